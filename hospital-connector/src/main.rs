#![forbid(unsafe_code)]

locus_platform::main!(
    locus_hospital_connector::startup::Application,
    "A Locus hospital connector: publishes sealed pointers to this hospital's records and releases them under grants, logging every release first"
);
