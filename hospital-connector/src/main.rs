#![forbid(unsafe_code)]

use locus_hospital_connector::startup::Application;

fn main() -> anyhow::Result<()> {
    locus_platform::launch::launch::<Application>(locus_platform::program!(
        "A Locus hospital connector: publishes sealed pointers to this hospital's records and releases them under grants, logging every release first"
    ))?;
    Ok(())
}
