//! `locus up`: the whole network on this machine until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use locus_cli::consortium::{Network, Options, Ports, Storage};
use locus_cli::network::NETWORK_FILE;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where keys, certificates, databases and network.json live; reused on later starts.
    #[arg(long, default_value = "locus-data")]
    data_dir: PathBuf,
    /// Put every service on PostgreSQL (one database per service, created on
    /// the server this URL names); SQLite files in the data folder otherwise.
    #[arg(long, env = "LOCUS_DATABASE_URL")]
    database_url: Option<String>,
    /// The index listens here; consent on +10 and +11, hospitals on +20 and
    /// +30. 0 lets the system pick free ports (network.json says which).
    #[arg(long, default_value_t = 7300)]
    base_port: u16,
    /// Synthetic patients to make on the first start.
    #[arg(long, default_value_t = 24)]
    patients: usize,
}

pub async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let mut options = Options::new(&args.data_dir);
    options.storage = Storage::from_url(args.database_url.as_deref())?;
    options.ports = match args.base_port {
        0 => Ports::Ephemeral,
        base => Ports::Fixed(base),
    };
    options.patients = args.patients;
    options.witness_interval = std::time::Duration::from_secs(1);
    println!(
        "Starting the Locus development network in {}",
        args.data_dir.display()
    );
    let network = Network::start(&options, &|line| println!("  {line}"))
        .await
        .context("the network did not start")?;
    print_summary(&network);
    stop_requested().await.context("waiting for Ctrl-C")?;
    println!("\nStopping: hospitals and consent first, then the ledger signs its last checkpoint.");
    network.stop().await;
    println!(
        "Stopped. Start again with the same command; the data is kept in {}.",
        args.data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C, or SIGTERM as `kill` or a service manager sends it.
async fn stop_requested() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted,
        _ = terminate.recv() => Ok(()),
    }
}

fn print_summary(network: &Network) {
    let info = &network.info;
    let me = std::env::args().next().unwrap_or_else(|| "locus".into());
    let file = network.dir.join(NETWORK_FILE);
    let pki = network.dir.join("pki");
    println!();
    println!("Locus is running on {} (Ctrl-C stops it).", info.database);
    println!();
    println!(
        "  index-service + ledger  {}   API: {}",
        info.index.url, info.index.openapi
    );
    println!("  consent, members        {}", info.consent.member_url);
    println!("  consent, patients       {}", info.consent.patient_url);
    for (hospital, records) in info.hospitals.iter().zip(&network.seeded.records) {
        println!(
            "  {:<22}  {}   {}, {} records",
            hospital.id, hospital.url, hospital.name, records.1
        );
    }
    println!(
        "  regulator               certificate {}",
        info.regulator.cert.file.display()
    );
    println!();
    println!(
        "  {} synthetic patients; everything a script needs is in {}",
        network.seeded.patients,
        file.display()
    );
    println!();
    println!("Try next, in another terminal:");
    println!("  {me} audit verify --network {}", file.display());
    println!(
        "  {me} audit events --network {} --type {}",
        file.display(),
        locus_protocol::entry::EventKind::PointersPublished
    );
    println!(
        "  {me} audit export --network {} --out audit-bundle.json",
        file.display()
    );
    println!(
        "  curl --cacert {0}/ca.pem --cert {0}/regulator.pem --key {0}/regulator-key.pem {1}/checkpoint",
        pki.display(),
        info.ledger.tlog_base_url
    );
    println!(
        "  {me} audit watch --network {}   (the regulator as a witness)",
        file.display()
    );
    println!("  {me} demo          (the whole story on its own temporary network)");
}
