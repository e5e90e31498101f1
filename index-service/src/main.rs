#![forbid(unsafe_code)]

locus_platform::main!(
    locus_index_service::startup::Application,
    "The Locus index service: hosts the ledger (and, next, the hashed index)"
);
