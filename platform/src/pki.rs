//! The consortium PKI: one certificate authority, one certificate per node.
//!
//! ECDSA P-256 keys and SHA-256 signatures, which every TLS stack accepts. A
//! node's certificate names its member id (CN) and the hosts it serves; the
//! consortium directory pins each member's certificate by its `x5t#S256`
//! thumbprint, which is what maps a TLS peer to a member.

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509Name, X509NameBuilder, X509};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate operation failed: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("{0}")]
    Invalid(&'static str),
}

const CA_DAYS: u32 = 3650;
const NODE_DAYS: u32 = 825;

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct IssuedCertificate {
    pub cert_pem: String,
    /// PKCS#8, unencrypted: store it with owner-only permissions.
    pub key_pem: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate").finish_non_exhaustive()
    }
}

pub struct CertificateAuthority {
    cert: X509,
    key: PKey<Private>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("subject", &self.cert.subject_name())
            .finish_non_exhaustive()
    }
}

fn p256_key() -> Result<PKey<Private>, PkiError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

fn serial() -> Result<Asn1Integer, PkiError> {
    let mut bn = BigNum::new()?;
    bn.rand(127, MsbOption::MAYBE_ZERO, false)?;
    Ok(bn.to_asn1_integer()?)
}

fn distinguished_name(common_name: &str) -> Result<X509Name, PkiError> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "Locus consortium")?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    Ok(name.build())
}

fn builder(common_name: &str, days: u32, key: &PKey<Private>) -> Result<X509Builder, PkiError> {
    let name = distinguished_name(common_name)?;
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    let serial = serial()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_pubkey(key)?;
    builder.set_not_before(&*Asn1Time::days_from_now(0)?)?;
    builder.set_not_after(&*Asn1Time::days_from_now(days)?)?;
    Ok(builder)
}

impl CertificateAuthority {
    /// A new self-signed consortium CA.
    pub fn create(name: &str) -> Result<Self, PkiError> {
        let key = p256_key()?;
        let mut x509 = builder(name, CA_DAYS, &key)?;
        let issuer = distinguished_name(name)?;
        x509.set_issuer_name(&issuer)?;
        x509.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
        x509.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&x509.x509v3_context(None, None))?;
        x509.append_extension(ski)?;
        x509.sign(&key, MessageDigest::sha256())?;
        Ok(Self {
            cert: x509.build(),
            key,
        })
    }

    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let cert = X509::from_pem(cert_pem.as_bytes())?;
        let key = PKey::private_key_from_pem(key_pem.as_bytes())?;
        if !cert.public_key()?.public_eq(&key) {
            return Err(PkiError::Invalid(
                "the CA key does not match its certificate",
            ));
        }
        Ok(Self { cert, key })
    }

    pub fn to_issued(&self) -> Result<IssuedCertificate, PkiError> {
        Ok(IssuedCertificate {
            cert_pem: String::from_utf8_lossy(&self.cert.to_pem()?).into_owned(),
            key_pem: zeroize::Zeroizing::new(
                String::from_utf8_lossy(&self.key.private_key_to_pem_pkcs8()?).into_owned(),
            ),
        })
    }

    pub fn cert_pem(&self) -> Result<String, PkiError> {
        Ok(String::from_utf8_lossy(&self.cert.to_pem()?).into_owned())
    }

    /// A certificate for node `member_id`, usable as TLS server and client,
    /// valid for `hosts` (DNS names or IP addresses).
    pub fn issue(&self, member_id: &str, hosts: &[&str]) -> Result<IssuedCertificate, PkiError> {
        if hosts.is_empty() {
            return Err(PkiError::Invalid(
                "a node certificate needs at least one host",
            ));
        }
        let key = p256_key()?;
        let mut x509 = builder(member_id, NODE_DAYS, &key)?;
        x509.set_issuer_name(self.cert.subject_name())?;
        x509.append_extension(BasicConstraints::new().critical().build()?)?;
        x509.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_agreement()
                .build()?,
        )?;
        x509.append_extension(
            ExtendedKeyUsage::new()
                .server_auth()
                .client_auth()
                .build()?,
        )?;
        let mut san = SubjectAlternativeName::new();
        for host in hosts {
            if host.parse::<std::net::IpAddr>().is_ok() {
                san.ip(host);
            } else {
                san.dns(host);
            }
        }
        let san = san.build(&x509.x509v3_context(Some(&self.cert), None))?;
        x509.append_extension(san)?;
        x509.sign(&self.key, MessageDigest::sha256())?;
        Ok(IssuedCertificate {
            cert_pem: String::from_utf8_lossy(&x509.build().to_pem()?).into_owned(),
            key_pem: zeroize::Zeroizing::new(
                String::from_utf8_lossy(&key.private_key_to_pem_pkcs8()?).into_owned(),
            ),
        })
    }
}

/// The DER of the first certificate in `pem`.
pub fn certificate_der(pem: &str) -> Result<Vec<u8>, PkiError> {
    Ok(X509::from_pem(pem.as_bytes())?.to_der()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::X509StoreContext;

    fn verifies(ca: &CertificateAuthority, cert_pem: &str) -> bool {
        let mut store = X509StoreBuilder::new().unwrap();
        store.add_cert(ca.cert.clone()).unwrap();
        let store = store.build();
        let cert = X509::from_pem(cert_pem.as_bytes()).unwrap();
        let mut ctx = X509StoreContext::new().unwrap();
        ctx.init(&store, &cert, &Stack::new().unwrap(), |c| c.verify_cert())
            .unwrap()
    }

    #[test]
    fn issued_certificates_chain_to_their_ca_only() {
        let ca = CertificateAuthority::create("Locus test CA").unwrap();
        let other = CertificateAuthority::create("Another CA").unwrap();
        let node = ca.issue("hospital-a", &["localhost", "127.0.0.1"]).unwrap();
        assert!(verifies(&ca, &node.cert_pem));
        assert!(!verifies(&other, &node.cert_pem));
        let cert = X509::from_pem(node.cert_pem.as_bytes()).unwrap();
        let cn = cert
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .unwrap();
        assert_eq!(cn.data().to_string().unwrap(), "hospital-a");
        let reloaded =
            CertificateAuthority::load(&ca.cert_pem().unwrap(), &ca.to_issued().unwrap().key_pem)
                .unwrap();
        assert!(verifies(
            &reloaded,
            &reloaded.issue("x", &["localhost"]).unwrap().cert_pem
        ));
        assert!(CertificateAuthority::load(
            &ca.cert_pem().unwrap(),
            &other.to_issued().unwrap().key_pem
        )
        .is_err());
        assert!(ca.issue("x", &[]).is_err());
    }
}
