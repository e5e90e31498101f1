//! The `locus` command's library: the development consortium (`locus up`),
//! the guided demo, the regulator's audit and the benchmark, so tests can drive
//! them in-process as well as through the binary.
#![forbid(unsafe_code)]
// A command-line program's library: stdout is its interface.
#![allow(clippy::print_stdout)]

pub mod audit;
pub mod bench;
pub mod consortium;
pub mod demo;
pub mod network;
pub mod phone;
pub mod pki;
pub mod synthetic;
