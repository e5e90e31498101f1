#![forbid(unsafe_code)]

use locus_index_service::startup::Application;

fn main() -> anyhow::Result<()> {
    locus_platform::launch::launch::<Application>(locus_platform::program!(
        "The Locus index service: hosts the ledger (and, next, the hashed index)"
    ))?;
    Ok(())
}
