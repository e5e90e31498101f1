#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod access;
pub mod clock;
pub mod config;
pub mod db;
pub mod files;
pub mod http;
pub mod launch;
pub mod openapi;
pub mod pki;
pub mod server;
pub mod strict;
pub mod telemetry;
pub mod tls;
