//! `type = "command"`: runs `program` with `args`, the notification JSON on stdin and the
//! idempotency key in `TUNNELWATCH_IDEMPOTENCY_KEY`. Exit 0 is delivered; any other exit, or a
//! program that cannot start or runs past `timeout`, is a failure the outbox retries.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{BuildError, Notifier, NotifyError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub program: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Seconds the program may run (default 30).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    30
}

impl Config {
    pub fn build(&self, name: &str) -> Result<Box<dyn Notifier>, BuildError> {
        if self.program.trim().is_empty() || self.timeout_seconds == 0 {
            return Err(BuildError {
                name: name.to_owned(),
                message: "program must be set and timeout_seconds more than 0".into(),
            });
        }
        Ok(Box::new(CommandNotifier {
            config: self.clone(),
        }))
    }
}

struct CommandNotifier {
    config: Config,
}

impl Notifier for CommandNotifier {
    fn kind(&self) -> &'static str {
        "command"
    }

    fn deliver(&self, body: &[u8], key: &str) -> Result<(), NotifyError> {
        let c = &self.config;
        let fail = |m: String| NotifyError::Transient(format!("{}: {m}", c.program));
        let mut child = Command::new(&c.program)
            .args(&c.args)
            .env("TUNNELWATCH_IDEMPOTENCY_KEY", key)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| fail(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A program that does not read its stdin is not an error.
            let _ = stdin.write_all(body);
        }
        let deadline = Instant::now() + Duration::from_secs(c.timeout_seconds);
        loop {
            match child.try_wait().map_err(|e| fail(e.to_string()))? {
                Some(status) if status.success() => return Ok(()),
                Some(status) => return Err(fail(format!("exited with {status}"))),
                None if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!("ran longer than {} s", c.timeout_seconds)));
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_decides() {
        let ok = Config {
            program: "sh".into(),
            args: vec!["-c".into(), "cat > /dev/null".into()],
            timeout_seconds: 5,
        };
        ok.build("c").unwrap().deliver(b"{}", "k").unwrap();
        let bad = Config {
            args: vec!["-c".into(), "exit 3".into()],
            ..ok.clone()
        };
        let e = bad.build("c").unwrap().deliver(b"{}", "k").unwrap_err();
        assert!(matches!(e, NotifyError::Transient(m) if m.contains("exit")));
        let missing = Config {
            program: "/nonexistent/notify".into(),
            ..ok
        };
        assert!(missing.build("c").unwrap().deliver(b"{}", "k").is_err());
    }
}
