#![forbid(unsafe_code)]

use locus_consent::startup::Application;

fn main() -> anyhow::Result<()> {
    locus_platform::launch::launch::<Application>(locus_platform::program!(
        "The Locus consent service: patients approve, narrow, refuse and revoke grants from their phones; every decision is on the ledger"
    ))?;
    Ok(())
}
