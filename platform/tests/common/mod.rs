//! What more than one of the platform's test files needs.

use std::time::Duration;

use locus_platform::pki::{certificate_der, CertificateAuthority, IssuedCertificate};
use locus_platform::tls::{http_client, TlsFiles};
use locus_protocol::grant::Confirmation;

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

    /// Asserts that a GET of `url` with the member's certificate reaches a
    /// handler that sees that certificate (it answers its thumbprint).
    pub async fn assert_member_seen(&self, url: &str) {
        let client = http_client(&self.client, Duration::from_secs(5)).unwrap();
        let seen = client.get(url).send().await.unwrap().text().await.unwrap();
        let member = certificate_der(&self.member.cert_pem).unwrap();
        assert_eq!(seen, Confirmation::for_certificate_der(&member).x5t_s256);
    }
}
