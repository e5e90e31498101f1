#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod config;
pub mod fhir;
pub mod import;
pub mod node;
pub mod publish;
pub mod records;
pub mod requester;
pub mod retrieve;
pub mod schema;
pub mod startup;
pub mod witness;

pub use import::{
    import_bundle, import_paths, ImportError, ImportProgress, ImportReport, ImportSummary,
};
pub use records::{NewRecordInput, Record, RecordStore, StoreError, Upserted};
