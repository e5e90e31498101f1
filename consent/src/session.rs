//! Patient sessions: after a device answers a challenge with its key, the
//! patient holds a short-lived token naming their patient key and that device.
//! Tokens are MACed with a key that lives only in this process's memory, so a
//! restart signs everyone out, and nothing about a session is stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::digest::{Key, KeyInit};
use hmac::{Hmac, Mac};
use locus_protocol::device::DeviceKeyId;
use locus_protocol::ids::PatientKey;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

/// How long a session lasts.
pub const SESSION_SECS: i64 = 15 * 60;
const SESSION_LABEL: &[u8] = b"locus/patient-session/v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// The patient key (hex).
    pub sub: PatientKey,
    /// The device that signed in (its RFC 7638 thumbprint).
    pub dev: DeviceKeyId,
    /// Expiry, Unix seconds.
    pub exp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session token is not valid")]
pub struct InvalidSession;

pub struct SessionKeys {
    // One HMAC-SHA256 block: the fixed-size key the infallible constructor takes.
    key: Zeroizing<[u8; 64]>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

impl SessionKeys {
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 64]);
        OsRng.fill_bytes(key.as_mut());
        Self { key }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new(Key::<Hmac<Sha256>>::from_slice(self.key.as_ref()));
        mac.update(SESSION_LABEL);
        mac.update(payload);
        mac
    }

    pub fn issue(&self, session: &Session) -> String {
        let payload = serde_json::to_vec(session).unwrap_or_default();
        let tag = self.mac(&payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The session a token carries, if its MAC holds and it has not expired.
    pub fn verify(&self, token: &str, now: i64) -> Result<Session, InvalidSession> {
        if token.len() > 1024 {
            return Err(InvalidSession);
        }
        let (payload, tag) = token.split_once('.').ok_or(InvalidSession)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| InvalidSession)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| InvalidSession)?;
        self.mac(&payload)
            .verify_slice(&tag)
            .map_err(|_| InvalidSession)?;
        let session: Session = serde_json::from_slice(&payload).map_err(|_| InvalidSession)?;
        if now >= session.exp {
            return Err(InvalidSession);
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_they_expire_and_only_under_their_key() {
        let keys = SessionKeys::generate();
        let session = Session {
            sub: PatientKey::from_bytes([0xab; 32]),
            dev: DeviceKeyId::from_bytes([0x0d; 32]),
            exp: 100,
        };
        let token = keys.issue(&session);
        assert_eq!(keys.verify(&token, 99), Ok(session));
        assert_eq!(keys.verify(&token, 100), Err(InvalidSession));
        assert_eq!(
            SessionKeys::generate().verify(&token, 1),
            Err(InvalidSession)
        );
        let mut forged = token.clone();
        forged.replace_range(0..1, if token.starts_with('e') { "f" } else { "e" });
        assert_eq!(keys.verify(&forged, 1), Err(InvalidSession));
        for bad in ["", ".", "a.b", "not a token", &"x".repeat(2000)] {
            assert_eq!(keys.verify(bad, 1), Err(InvalidSession));
        }
    }
}
