#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod api;
pub mod client;
pub mod config;
pub mod pointers;
pub mod schema;
pub mod startup;
