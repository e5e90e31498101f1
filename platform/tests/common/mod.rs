//! What more than one of the platform's test files needs.

use locus_platform::pki::{CertificateAuthority, IssuedCertificate};
use locus_platform::tls::TlsFiles;

/// Writes the CA's certificate and `node`'s certificate and key under `dir`,
/// as the TLS files of `name`.
pub fn write(
    dir: &std::path::Path,
    name: &str,
    ca: &CertificateAuthority,
    node: &IssuedCertificate,
) -> TlsFiles {
    let files = TlsFiles {
        ca_cert: dir.join(format!("{name}-ca.pem")),
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&files.ca_cert, ca.cert_pem().unwrap()).unwrap();
    std::fs::write(&files.cert, &node.cert_pem).unwrap();
    std::fs::write(&files.key, node.key_pem.as_bytes()).unwrap();
    files
}

/// A test CA with a server (the index) and one member (hospital-a), their
/// TLS files written under a folder.
pub struct Consortium {
    pub server: TlsFiles,
    pub client: TlsFiles,
    pub member: IssuedCertificate,
}

impl Consortium {
    pub fn new(dir: &std::path::Path) -> Self {
        let ca = CertificateAuthority::create("Locus test CA").unwrap();
        let server = write(
            dir,
            "server",
            &ca,
            &ca.issue("index", &["localhost", "127.0.0.1"]).unwrap(),
        );
        let member = ca.issue("hospital-a", &["localhost"]).unwrap();
        let client = write(dir, "client", &ca, &member);
        Self {
            server,
            client,
            member,
        }
    }
}
