#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod acts;
pub mod api;
pub mod config;
pub mod fhir;
pub mod schema;
pub mod session;
pub mod startup;
pub mod store;
pub mod throttle;
pub mod words;
