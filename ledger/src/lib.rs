#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod api;
pub mod checkpoint;
pub mod client;
pub mod cosignature;
pub mod directory;
pub mod merkle;
pub mod metrics;
pub mod note;
pub mod schema;
pub mod sequencer;
pub mod startup;
pub mod store;
pub mod tiles;
pub mod wire;
pub mod witness;
