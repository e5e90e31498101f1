//! Files that hold secrets.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

/// Writes a file only its owner can read, creating its folder, and refusing to
/// overwrite an existing file (a key is never replaced by accident).
pub fn write_secret_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[derive(Debug, thiserror::Error)]
#[error("key file {path}: {message}")]
pub struct KeyFileError {
    pub path: String,
    pub message: String,
}

fn key_error(path: &Path, message: impl std::fmt::Display) -> KeyFileError {
    KeyFileError {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Loads the key in `path`, or creates one there on first start.
fn load_or_create<K>(
    path: &Path,
    load: impl FnOnce(&str) -> Result<K, String>,
    create: impl FnOnce() -> Result<(K, zeroize::Zeroizing<String>), String>,
) -> Result<K, KeyFileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => load(text.trim()).map_err(|e| key_error(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (key, text) = create().map_err(|e| key_error(path, e))?;
            write_secret_file(path, text.as_bytes()).map_err(|e| key_error(path, e))?;
            tracing::info!(path = %path.display(), "created a new key");
            Ok(key)
        }
        Err(e) => Err(key_error(path, e)),
    }
}

/// A member's Ed25519 signing key, PKCS#8 PEM.
pub fn load_or_create_signing_key(
    path: &Path,
) -> Result<locus_protocol::signing::SigningKey, KeyFileError> {
    use locus_protocol::signing::SigningKey;
    load_or_create(
        path,
        |pem| SigningKey::from_pkcs8_pem(pem).map_err(|e| e.to_string()),
        || {
            let key = SigningKey::generate();
            let pem = key.to_pkcs8_pem().map_err(|e| e.to_string())?;
            Ok((key, pem))
        },
    )
}

/// A member's X25519 key for HPKE, base64url of the 32 secret bytes.
pub fn load_or_create_x25519_key(
    path: &Path,
) -> Result<locus_protocol::seal::X25519SecretKey, KeyFileError> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use locus_protocol::seal::X25519SecretKey;
    load_or_create(
        path,
        |text| {
            let bytes = zeroize::Zeroizing::new(
                URL_SAFE_NO_PAD
                    .decode(text)
                    .map_err(|_| "not base64url".to_owned())?,
            );
            let bytes: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| "not 32 bytes".to_owned())?;
            Ok(X25519SecretKey::from_bytes(bytes))
        },
        || {
            let key = X25519SecretKey::generate();
            let text = zeroize::Zeroizing::new(URL_SAFE_NO_PAD.encode(*key.to_bytes()));
            Ok((key, text))
        },
    )
}

/// The consortium linkage key: `{"kid": "...", "key": "<base64>"}`. Never
/// created here: every connector and the consent service must hold the same
/// one, so it is made once (by `locus up` or the consortium) and distributed.
pub fn load_linkage_key(path: &Path) -> Result<locus_protocol::linkage::LinkageKey, KeyFileError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct LinkageFile {
        kid: String,
        key: String,
    }
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| key_error(path, e))?);
    let file: LinkageFile = serde_json::from_str(&text)
        .map_err(|_| key_error(path, "expected {\"kid\": ..., \"key\": ...}"))?;
    let secret = zeroize::Zeroizing::new(file.key);
    locus_protocol::linkage::LinkageKey::from_base64(&file.kid, &secret)
        .map_err(|e| key_error(path, e))
}

/// Writes a linkage key file (refusing to overwrite one).
pub fn write_linkage_key(
    path: &Path,
    key: &locus_protocol::linkage::LinkageKey,
) -> std::io::Result<()> {
    let text = zeroize::Zeroizing::new(format!(
        "{{\"kid\":\"{}\",\"key\":\"{}\"}}\n",
        key.kid(),
        key.to_base64().as_str()
    ));
    write_secret_file(path, text.as_bytes())
}
