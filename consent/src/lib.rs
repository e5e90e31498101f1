#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod config;
pub mod fhir;
pub mod schema;
pub mod service;
pub mod session;
pub mod startup;
pub mod store;
pub mod throttle;
pub mod words;
