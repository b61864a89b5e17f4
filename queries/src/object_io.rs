//! The store's one bridge from its synchronous API to `object_store`'s async I/O.
//!
//! Every segment put, list, get and delete runs here: the future is spawned on a tokio runtime
//! the store owns (`store-io`, one worker, started on first use and shared by every store of
//! the process) and the calling thread waits on a plain channel for its result. That is correct
//! whatever the caller is:
//! - a plain thread (the one-shot ingest writer, tests),
//! - a thread inside another tokio runtime's `block_on` or task (the metrics rebuild, the
//!   serve pipeline): the I/O future never runs on the caller's scheduler, so neither that
//!   scheduler's cooperative budget nor its deferred wake-ups can starve it. (The hang this
//!   replaces: `futures::executor::block_on(LocalFileSystem::put)` inside a current-thread
//!   runtime parked forever once the task's budget was spent — `put` awaits a
//!   `spawn_blocking` handle, which then registers a wake-up the blocked scheduler never runs.)
//! - an S3 or other network store later: their clients need a tokio reactor, which this runtime
//!   provides whatever thread calls.
//!
//! Limits: the calling thread blocks for the duration of the operation, so async code should
//! not call the store's synchronous API on a runtime worker it cannot spare (use
//! `spawn_blocking`); it is never a deadlock, only a blocked thread. The runtime is a process
//! static on purpose: a runtime dropped inside async code panics, and stores are opened and
//! dropped from both kinds of context.

use std::future::Future;
use std::sync::OnceLock;

use crate::error::StoreError;

static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();

fn runtime() -> Result<&'static tokio::runtime::Runtime, StoreError> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("store-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| StoreError::IoRuntime(e.clone()))
}

/// Runs `fut` to completion on the store's I/O runtime and returns its output; callable from
/// any thread, inside or outside a tokio runtime.
pub fn run<F, T>(fut: F) -> Result<T, StoreError>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime()?.spawn(async move {
        // The receiver waits until this is sent; it is gone only if the caller panicked.
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .map_err(|_| StoreError::IoRuntime("an I/O task ended without an answer".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_from_a_plain_thread_and_inside_a_runtime() {
        assert_eq!(run(async { 1 + 1 }).unwrap(), 2);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let v = rt.block_on(async {
            // A nested use from async code, with a spawn_blocking inside (what LocalFileSystem
            // does for every call).
            run(async {
                tokio::task::spawn_blocking(|| 40)
                    .await
                    .expect("blocking task")
            })
            .unwrap()
                + 2
        });
        assert_eq!(v, 42);
    }
}
