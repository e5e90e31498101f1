//! `locus pki ...`: the consortium's certificate authority and node certificates.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use locus_platform::files::write_secret_file;
use locus_platform::pki::{certificate_der, CertificateAuthority};
use locus_protocol::grant::Confirmation;
use locus_protocol::ids::MemberId;

#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create the consortium CA: DIR/ca.pem (share it) and DIR/ca-key.pem (keep it offline).
    Init {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "Locus consortium CA")]
        name: String,
    },
    /// Issue a node certificate signed by the CA in DIR: DIR/<member>.pem and
    /// DIR/<member>-key.pem. Prints the certificate's x5t#S256 thumbprint, which
    /// the member's directory entry pins.
    Issue {
        #[arg(long)]
        dir: PathBuf,
        /// The member id the certificate is for (its CN).
        #[arg(long)]
        member: String,
        /// Host names or IP addresses the node serves on (repeat).
        #[arg(long = "host", default_values_t = ["localhost".to_owned(), "127.0.0.1".to_owned()])]
        hosts: Vec<String>,
    },
}

pub fn run(command: PkiCommand) -> anyhow::Result<ExitCode> {
    match command {
        PkiCommand::Init { dir, name } => {
            init_ca(&dir, &name)?;
            println!("created the consortium CA in {}", dir.display());
        }
        PkiCommand::Issue { dir, member, hosts } => {
            let member_id: MemberId = member
                .parse()
                .map_err(|_| anyhow::anyhow!("{member:?} is not a member id"))?;
            let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
            let thumbprint = issue(&dir, &load_ca(&dir)?, &member_id, &hosts)?;
            println!("{}", thumbprint.x5t_s256);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates a CA named `name` in `dir`: `ca-key.pem` (secret) and `ca.pem`.
/// Refuses to overwrite either.
pub fn init_ca(dir: &Path, name: &str) -> anyhow::Result<()> {
    let issued = CertificateAuthority::create(name)?.to_issued()?;
    write_new(&dir.join("ca-key.pem"), issued.key_pem.as_bytes(), true)?;
    write_new(&dir.join("ca.pem"), issued.cert_pem.as_bytes(), false)
}

/// Issues `member`'s node certificate for `hosts` into `dir`:
/// `<member>-key.pem` (secret) and `<member>.pem`. Returns its thumbprint,
/// which the member's directory record pins.
pub fn issue(
    dir: &Path,
    ca: &CertificateAuthority,
    member: &MemberId,
    hosts: &[&str],
) -> anyhow::Result<Confirmation> {
    let issued = ca.issue(member.as_str(), hosts)?;
    write_new(
        &dir.join(format!("{member}-key.pem")),
        issued.key_pem.as_bytes(),
        true,
    )?;
    write_new(
        &dir.join(format!("{member}.pem")),
        issued.cert_pem.as_bytes(),
        false,
    )?;
    Ok(Confirmation::for_certificate_der(&certificate_der(
        &issued.cert_pem,
    )?))
}

pub fn load_ca(dir: &Path) -> anyhow::Result<CertificateAuthority> {
    let cert = std::fs::read_to_string(dir.join("ca.pem"))
        .with_context(|| format!("reading {}/ca.pem", dir.display()))?;
    let key = std::fs::read_to_string(dir.join("ca-key.pem"))
        .with_context(|| format!("reading {}/ca-key.pem", dir.display()))?;
    Ok(CertificateAuthority::load(&cert, &key)?)
}

fn write_new(path: &Path, contents: &[u8], secret: bool) -> anyhow::Result<()> {
    if secret {
        write_secret_file(path, contents)
    } else {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, contents))
    }
    .with_context(|| format!("writing {} (it must not exist yet)", path.display()))
}
