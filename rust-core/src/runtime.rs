//! The core's one small tokio runtime, for registry calls and background schema refreshes.

use std::future::Future;
use std::sync::mpsc;
use std::sync::LazyLock;

use crate::error::{Error, Result};

static RUNTIME: LazyLock<std::result::Result<tokio::runtime::Runtime, String>> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
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
