//! The outbox against a notifier that fails its first attempts, with the process "killed" (the
//! outbox dropped without notice) and reopened in between: every notification is delivered
//! exactly once, after backoff; one that keeps failing past its expiry ends in `failed/`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tunnelwatch_exporters::notify::{Notifier, NotifyError};
use tunnelwatch_pipeline::outbox::{Outbox, backoff_ms};

/// Fails the first `failures` deliveries, then records what it gets.
struct Flaky {
    failures: Mutex<u32>,
    got: Arc<Mutex<Vec<String>>>,
}

impl Notifier for Flaky {
    fn kind(&self) -> &'static str {
        "flaky"
    }
    fn deliver(&self, _body: &[u8], key: &str) -> Result<(), NotifyError> {
        let mut f = self.failures.lock().unwrap();
        if *f > 0 {
            *f -= 1;
            return Err(NotifyError::Transient("receiver down".into()));
        }
        self.got.lock().unwrap().push(key.to_owned());
        Ok(())
    }
}

fn notifiers(failures: u32, got: &Arc<Mutex<Vec<String>>>) -> BTreeMap<String, Box<dyn Notifier>> {
    let mut m: BTreeMap<String, Box<dyn Notifier>> = BTreeMap::new();
    m.insert(
        "hook".into(),
        Box::new(Flaky {
            failures: Mutex::new(failures),
            got: got.clone(),
        }),
    );
    m
}

#[test]
fn delivered_exactly_once_across_failures_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let hour = 3_600_000;
    {
        let outbox = Outbox::open(dir.path(), hour).unwrap();
        for k in ["a@1:ALARM", "b@1:ALARM", "a@2:OK"] {
            outbox
                .enqueue("hook", k, serde_json::json!({"k": k}), 0)
                .unwrap();
        }
        // The same notification again while pending: still one.
        outbox
            .enqueue("hook", "a@1:ALARM", serde_json::json!({}), 0)
            .unwrap();
        assert_eq!(outbox.pending(), 3);
        // Two failures, then the receiver is up, but the process dies before retrying.
        let n = notifiers(2, &got);
        assert_eq!(outbox.deliver_due(0, &n).unwrap(), 1);
        assert_eq!(
            outbox
                .stats
                .retries
                .load(std::sync::atomic::Ordering::Relaxed),
            2
        );
        // Not due yet: nothing is retried before its backoff.
        assert_eq!(outbox.deliver_due(100, &n).unwrap(), 0);
    }
    // A new process on the same directory.
    let outbox = Outbox::open(dir.path(), hour).unwrap();
    assert_eq!(outbox.pending(), 2);
    let n = notifiers(0, &got);
    // Past the longest backoff so far (attempt 2: at most 4 s).
    let later = 10_000;
    assert_eq!(outbox.deliver_due(later, &n).unwrap(), 2);
    assert_eq!(outbox.pending(), 0);
    assert_eq!(outbox.deliver_due(later * 10, &n).unwrap(), 0);
    let mut keys = got.lock().unwrap().clone();
    keys.sort();
    assert_eq!(keys, ["a@1:ALARM", "a@2:OK", "b@1:ALARM"]);
}

#[test]
fn backoff_grows_with_jitter_and_expiry_moves_to_failed() {
    for attempt in 1..12 {
        let ceiling = (1_000i64 << attempt).min(300_000);
        let d = backoff_ms("k", attempt);
        assert!(d >= ceiling / 2 && d <= ceiling, "{attempt}: {d}");
    }
    let dir = tempfile::tempdir().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let outbox = Outbox::open(dir.path(), 60_000).unwrap();
    outbox
        .enqueue("hook", "k", serde_json::json!({}), 0)
        .unwrap();
    let n = notifiers(u32::MAX, &got);
    outbox.deliver_due(0, &n).unwrap();
    outbox.deliver_due(60_000, &n).unwrap();
    assert_eq!(outbox.pending(), 0);
    assert_eq!(
        outbox
            .stats
            .failed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("outbox/failed"))
            .unwrap()
            .count(),
        1
    );
    // A notification for a notifier that is not configured fails at once.
    outbox
        .enqueue("gone", "k2", serde_json::json!({}), 0)
        .unwrap();
    outbox.deliver_due(0, &n).unwrap();
    assert_eq!(
        outbox
            .stats
            .failed
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert!(got.lock().unwrap().is_empty());
}
