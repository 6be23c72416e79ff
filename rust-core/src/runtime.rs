//! The core's one small tokio runtime, for registry calls and background schema refreshes: one
//! worker thread for the network calls, and at most `MAX_BLOCKING_THREADS` more for blocking work
//! (compiling schemas, reading schema files, DNS lookups), so the worker never waits on them.

use std::future::Future;
use std::sync::mpsc;
use std::sync::LazyLock;

use crate::error::{Error, Result};

/// Most threads the runtime runs blocking tasks on; more tasks wait for one of them.
const MAX_BLOCKING_THREADS: usize = 8;

static RUNTIME: LazyLock<std::result::Result<tokio::runtime::Runtime, String>> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_name("topicgate-registry")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
});

/// The runtime's handle; fails only if the OS refused to start its thread.
pub fn handle() -> Result<&'static tokio::runtime::Handle> {
    RUNTIME
        .as_ref()
        .map(|rt| rt.handle())
        .map_err(|e| Error::internal(format!("cannot start the registry runtime: {e}")))
}

/// Runs `fut` on the runtime and waits for it from any thread, even one inside another runtime.
pub fn block_on<F>(fut: F) -> Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    handle()?.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().map_err(|_| Error::internal("registry task ended without an answer"))
}

/// Runs `f` on one of the runtime's blocking threads and waits for it without holding up the
/// worker; a panic in `f` is a `500`.
pub async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|_| Err(Error::internal("a blocking registry task panicked")))
}
