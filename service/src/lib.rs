#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod access;
pub mod db;
pub mod files;
pub mod http;
pub mod pki;
pub mod tls;
