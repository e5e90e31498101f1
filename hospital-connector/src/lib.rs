#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod fhir;
pub mod import;
pub mod records;
pub mod schema;

pub use import::{import_bundle, import_paths, ImportError, ImportProgress, ImportReport};
pub use records::{NewRecordInput, Record, RecordStore, StoreError, Upserted};
