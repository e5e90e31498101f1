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
