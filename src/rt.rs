//! Futures that may be dropped by actix's shutdown, made safe to drop.
//!
//! actix-rt drops its `LocalSet` (every `spawn_local` task: actors, HTTP connections, background
//! jobs) before its Tokio runtime and outside it. A sqlx pool connection dropped there returns
//! itself to the pool with `tokio::spawn`, finds no runtime and panics; a panic in that
//! destructor aborts the whole process (a hub stopped while a query was in flight died with
//! SIGABRT instead of exiting). [`InRuntime`] drops what it wraps inside the runtime it was made
//! on. Every local spawn goes through [`spawn`] (clippy's `disallowed-methods` refuses the others).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::runtime::Handle;

/// `fut`, dropped inside the Tokio runtime current where it was wrapped (when there is one).
pub struct InRuntime<F> {
    fut: Option<Pin<Box<F>>>,
    handle: Option<Handle>,
}

impl<F: Future> InRuntime<F> {
    pub fn new(fut: F) -> Self {
        Self {
            fut: Some(Box::pin(fut)),
            handle: Handle::try_current().ok(),
        }
    }
}

impl<F: Future> Future for InRuntime<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let fut = self
            .fut
            .as_mut()
            .expect("InRuntime polled after it completed");
        let out = fut.as_mut().poll(cx);
        if out.is_ready() {
            // Finished: drop it now, on the runtime that polled it.
            self.fut = None;
        }
        out
    }
}

impl<F> Drop for InRuntime<F> {
    fn drop(&mut self) {
        let Some(fut) = self.fut.take() else { return };
        let _entered = match (&self.handle, Handle::try_current()) {
            (Some(handle), Err(_)) => Some(handle.enter()),
            _ => None,
        };
        drop(fut);
    }
}

/// `actix_rt::spawn`, with the task's future dropped inside the runtime if actix stops first.
#[allow(clippy::disallowed_methods)] // the one place that may.
pub fn spawn<F>(fut: F) -> actix_web::rt::task::JoinHandle<F::Output>
where
    F: Future + 'static,
{
    actix_web::rt::spawn(InRuntime::new(fut))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A task holding two sqlx pool connections when its actix system is dropped: without
    /// `InRuntime` the first connection's drop panics (no runtime), the second panics while
    /// that one unwinds, and the process aborts (what CI saw with a webhook in flight).
    #[test]
    fn a_task_holding_pool_connections_survives_the_system_stopping() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let (held_tx, held_rx) = mpsc::channel();
        let system = actix_web::rt::System::new();
        let pool = system.block_on(async {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let pool2 = pool.clone();
            spawn(async move {
                let first = pool2.acquire().await.unwrap();
                let second = pool2.acquire().await.unwrap();
                held_tx.send(()).unwrap();
                std::future::pending::<()>().await;
                drop((first, second));
            });
            // Let the task take its connection, then leave it pending.
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            pool
        });
        held_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        drop(system);
        // The connection went back (or was closed): the pool is usable from a new runtime.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let one: i64 = sqlx::query_scalar("SELECT 1")
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(one, 1);
        });
    }
}
