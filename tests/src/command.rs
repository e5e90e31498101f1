//! The `locus` binary as the command's own tests (`cli/tests/`) run it. They
//! pass its path, `env!("CARGO_BIN_EXE_locus")`, which only they can name.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A finished run's exit code (-1 when a signal ended it) and what it wrote,
/// stdout then stderr.
pub fn code_and_text(output: &Output) -> (i32, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

/// A running `locus up`, killed if a failing test leaves it behind.
#[derive(Debug)]
pub struct Up(Option<Child>);

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Up {
    /// Starts `locus up` (the binary `locus`) with its data in `dir` and its
    /// stdout in `log`, and waits up to `wait` until it has written
    /// network.json (a leftover one from an earlier start is removed first).
    pub fn start(
        locus: &str,
        dir: &Path,
        database_url: Option<&str>,
        log: &Path,
        wait: Duration,
    ) -> Self {
        let _ = std::fs::remove_file(dir.join("network.json"));
        let mut command = Command::new(locus);
        command
            .args(["up", "--base-port", "0", "--patients", "3", "--data-dir"])
            .arg(dir)
            .env_remove("LOCUS_DATABASE_URL")
            .stdout(Stdio::from(std::fs::File::create(log).expect("log file")))
            .stderr(Stdio::inherit());
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        let mut up = Up(Some(command.spawn().expect("start locus up")));
        let child = up.0.as_mut().expect("just started");
        let deadline = Instant::now() + wait;
        while !dir.join("network.json").exists() {
            if let Some(status) = child.try_wait().expect("locus up's status") {
                panic!(
                    "locus up exited with {status}:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "locus up wrote no network.json in {wait:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        up
    }

    /// The process, for a test that stops it itself.
    pub fn into_child(mut self) -> Child {
        self.0.take().expect("still running")
    }
}
