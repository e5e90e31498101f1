#![forbid(unsafe_code)]

locus_platform::main!(
    locus_consent::startup::Application,
    "The Locus consent service: patients approve, narrow, refuse and revoke grants from their phones; every decision is on the ledger"
);
