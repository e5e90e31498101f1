//! Everything the services in this test process log, kept so a test can check
//! that no identifier, name or code ever reached a log.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Debug, Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static CAPTURED: OnceLock<Buffer> = OnceLock::new();

/// Starts capturing this process's log lines, down to debug level (once).
pub fn capture() {
    CAPTURED.get_or_init(|| {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,h2=info,hyper=info,hyper_util=info,reqwest=info,actix_server=info,mio=info",
            ))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buffer
    });
}

/// What has been logged so far.
pub fn captured() -> String {
    CAPTURED
        .get()
        .map(|b| {
            String::from_utf8_lossy(&b.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
        })
        .unwrap_or_default()
}
