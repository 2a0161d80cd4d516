//! The last 64 KiB of a child's output pipe, read in the background.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// How much of a pipe is kept: its end, where the errors are.
pub const KEEP: usize = 64 * 1024;

/// What a pipe has given so far.
#[derive(Clone)]
pub struct SharedTail(Arc<Mutex<Vec<u8>>>);

impl SharedTail {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

pub struct OutputTail {
    buf: Arc<Mutex<Vec<u8>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl OutputTail {
    /// Starts reading `pipe` (when there is one) on a task of its own.
    pub fn collect<R: AsyncRead + Unpin + Send + 'static>(pipe: Option<R>) -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let task = pipe.map(|mut p| {
            let buf = Arc::clone(&buf);
            tokio::spawn(async move {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = p.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    let mut b = buf.lock().unwrap_or_else(|e| e.into_inner());
                    b.extend_from_slice(&chunk[..n]);
                    let excess = b.len().saturating_sub(KEEP);
                    b.drain(..excess);
                }
            })
        });
        Self { buf, task }
    }

    /// A handle that reads what has come so far, while the pipe is still open.
    pub fn shared(&self) -> SharedTail {
        SharedTail(Arc::clone(&self.buf))
    }

    /// Waits briefly for the end of the pipe (a daemon the child started may
    /// hold it open for ever), then returns what was read.
    pub async fn finish(mut self) -> Vec<u8> {
        if let Some(t) = self.task.take() {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_millis(200), t)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        std::mem::take(&mut *self.buf.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
