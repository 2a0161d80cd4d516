//! Clients that do not read their answers. An answer is written as fast as
//! the client takes it; one that stops taking it would hold the answer,
//! a buffer and a connection for ever. So every connection is watched from
//! the moment an answer starts until the client has acknowledged its last
//! byte: an answer that makes no progress for [`STALL`], or is not
//! delivered within [`RESPONSE_MAX`], has its connection reset, which
//! frees what it held (in the agent and in the kernel) at once.
//!
//! Progress is an answer's body being asked for its next piece (pieces are
//! at most [`PIECE`] bytes, so the server's buffer stays small and a stalled
//! client is seen), or, once the body is written, the kernel's send queue
//! shrinking as the client acknowledges.

use actix_web::{
    Error,
    body::{BodySize, BoxBody, MessageBody},
    dev::{Extensions, ServiceRequest, ServiceResponse},
    middleware::Next,
    rt::net::TcpStream,
    web::Bytes,
};
use std::{
    any::Any,
    os::fd::{AsFd, AsRawFd, OwnedFd},
    pin::Pin,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};
use tokio_util::sync::CancellationToken;

/// The longest an answer may go without progress.
pub const STALL: Duration = Duration::from_secs(10);
/// The longest an answer may take to be delivered, progress or not: a
/// client reading a byte at a time is making progress, and must still end.
pub const RESPONSE_MAX: Duration = Duration::from_secs(600);
/// The most bytes handed to the server at once: what a connection's write
/// buffer holds beyond the body itself.
const PIECE: usize = 16 * 1024;
/// How often connections are looked at.
const SWEEP: Duration = Duration::from_secs(1);

/// Every open connection, weakly: a connection's entry goes when it closes.
pub struct Connections {
    open: Mutex<Vec<Weak<Conn>>>,
    epoch: Instant,
    /// Connections reset for a stalled or overlong answer, for /metrics.
    reset: AtomicU64,
    /// Wakes the sweeper when a connection opens: with none open it sleeps.
    opened: tokio::sync::Notify,
}

/// One connection, as the sweeper sees it. Times are milliseconds since the
/// registry's epoch, plus one, so that 0 means "none".
pub struct Conn {
    /// A duplicate of the connection's socket: to read its send queue and to
    /// reset it. Closed with the last reference, after the connection's own.
    fd: OwnedFd,
    epoch: Instant,
    /// Answers whose body is still being written.
    writing: AtomicUsize,
    /// When the answer under way (written or not yet delivered) began.
    since: AtomicU64,
    progress: AtomicU64,
    /// The send queue at the last sweep.
    queued: AtomicU64,
    reset: AtomicBool,
}

impl Connections {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::new(Vec::new()),
            epoch: Instant::now(),
            reset: AtomicU64::new(0),
            opened: tokio::sync::Notify::new(),
        })
    }

    /// For `HttpServer::on_connect`: watches a new connection (plain or TLS).
    pub fn on_connect(&self, conn: &dyn Any, ext: &mut Extensions) {
        type Tls = actix_tls::accept::rustls_0_23::TlsStream<TcpStream>;
        let socket = match (conn.downcast_ref::<TcpStream>(), conn.downcast_ref::<Tls>()) {
            (Some(tcp), _) => tcp.as_fd(),
            (None, Some(tls)) => tls.get_ref().0.as_fd(),
            (None, None) => {
                tracing::warn!("a connection of an unknown kind goes unwatched for slow reading");
                return;
            }
        };
        let Ok(fd) = socket.try_clone_to_owned() else {
            // Out of descriptors: this one connection goes unwatched.
            tracing::warn!("cannot watch a new connection for slow reading");
            return;
        };
        let conn = Arc::new(Conn {
            fd,
            epoch: self.epoch,
            writing: AtomicUsize::new(0),
            since: AtomicU64::new(0),
            progress: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            reset: AtomicBool::new(false),
        });
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&conn));
        self.opened.notify_one();
        ext.insert(conn);
    }

    /// How many connections were reset for not reading.
    pub fn reset_count(&self) -> u64 {
        self.reset.load(Relaxed)
    }

    /// Looks at every connection each [`SWEEP`] until `shutdown`; while
    /// none is open, sleeps until one opens (an idle agent does not wake).
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let wait = async {
                if self.sweep() == 0 {
                    self.opened.notified().await;
                }
                tokio::time::sleep(SWEEP).await;
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wait => {}
            }
        }
    }

    /// Resets what is overdue; answers how many connections are open.
    fn sweep(&self) -> usize {
        let live: Vec<Arc<Conn>> = {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            open.retain(|c| c.strong_count() > 0);
            open.iter().filter_map(Weak::upgrade).collect()
        };
        let now = millis(self.epoch);
        for c in &live {
            if c.overdue(now) {
                c.reset();
                self.reset.fetch_add(1, Relaxed);
            }
        }
        live.len()
    }
}

impl Conn {
    fn now(&self) -> u64 {
        millis(self.epoch)
    }

    fn begin(&self) {
        if self.writing.fetch_add(1, Relaxed) == 0 && self.since.load(Relaxed) == 0 {
            let now = self.now();
            self.progress.store(now, Relaxed);
            self.since.store(now, Relaxed);
        }
    }

    fn moved(&self) {
        self.progress.store(self.now(), Relaxed);
    }

    fn end(&self) {
        self.writing.fetch_sub(1, Relaxed);
        self.moved();
    }

    /// Whether the answer under way has stalled or run too long; forgets
    /// an answer that has been delivered.
    fn overdue(&self, now: u64) -> bool {
        let since = self.since.load(Relaxed);
        if since == 0 || self.reset.load(Relaxed) {
            return false;
        }
        let queued = send_queue(&self.fd);
        if queued < self.queued.swap(queued, Relaxed) {
            self.moved();
        }
        if self.writing.load(Relaxed) == 0 && queued == 0 {
            // Delivered: the client has acknowledged every byte.
            self.since.store(0, Relaxed);
            // Unless the next answer began meanwhile.
            if self.writing.load(Relaxed) > 0 {
                self.since.store(now, Relaxed);
            }
            return false;
        }
        let progress = self.progress.load(Relaxed);
        now.saturating_sub(progress) > STALL.as_millis() as u64
            || now.saturating_sub(since) > RESPONSE_MAX.as_millis() as u64
    }

    /// Resets the connection: no linger, so closing it drops what is queued
    /// and answers the client with RST; the server's next write fails and
    /// it lets go of the connection, and the last descriptor closes it.
    fn reset(&self) {
        self.reset.store(true, Relaxed);
        let fd = self.fd.as_raw_fd();
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: `fd` is an open socket we own; the option is a plain struct
        // of the size given.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&raw const linger).cast(),
                size_of::<libc::linger>() as libc::socklen_t,
            );
            libc::shutdown(fd, libc::SHUT_RDWR);
        }
        tracing::info!(
            stalled_for_ms = self.now().saturating_sub(self.progress.load(Relaxed)),
            "a client stopped reading its answer; its connection is reset"
        );
    }
}

fn millis(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64 + 1
}

/// Bytes written to the socket that the client has not acknowledged.
fn send_queue(fd: &OwnedFd) -> u64 {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int for a TCP socket.
    let ok = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &raw mut n) } == 0;
    if ok { n.max(0) as u64 } else { 0 }
}

/// Middleware: hands every answer's body to its connection's watch.
pub async fn pace(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let conn = req.conn_data::<Arc<Conn>>().cloned();
    let res = next.call(req).await?;
    Ok(res.map_body(|_, body| Paced::new(body.boxed(), conn)))
}

/// A body that is handed out [`PIECE`] bytes at a time and tells its
/// connection's watch how it goes.
struct Paced {
    body: BoxBody,
    pending: Bytes,
    conn: Option<Arc<Conn>>,
}

impl Paced {
    fn new(body: BoxBody, conn: Option<Arc<Conn>>) -> Self {
        if let Some(c) = &conn {
            c.begin();
        }
        Self {
            body,
            pending: Bytes::new(),
            conn,
        }
    }

    fn finish(&mut self) {
        if let Some(c) = self.conn.take() {
            c.end();
        }
    }
}

impl Drop for Paced {
    fn drop(&mut self) {
        self.finish();
    }
}

impl MessageBody for Paced {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = &mut *self;
        let next = poll_piece(&mut this.body, &mut this.pending, cx);
        match &next {
            Poll::Ready(Some(Ok(_))) => {
                if let Some(c) = &this.conn {
                    c.moved();
                }
            }
            Poll::Ready(_) => this.finish(),
            Poll::Pending => {}
        }
        next
    }
}

/// The next at most [`PIECE`] bytes of `body`, the rest of its chunk kept
/// in `pending`. A piece shares its chunk's memory, which lives until the
/// chunk's last piece has been handed out.
pub fn poll_piece(
    body: &mut BoxBody,
    pending: &mut Bytes,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Bytes, Box<dyn std::error::Error>>>> {
    while pending.is_empty() {
        match Pin::new(&mut *body).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => *pending = chunk,
            Poll::Ready(other) => return Poll::Ready(other),
        }
    }
    Poll::Ready(Some(Ok(pending.split_to(pending.len().min(PIECE)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn a_body_is_handed_out_in_pieces_whole_and_in_order() {
        let body: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut paced = Paced::new(BoxBody::new(body.clone()), None);
        assert_eq!(paced.size(), BodySize::Sized(body.len() as u64));
        let mut out = Vec::new();
        while let Some(piece) = std::future::poll_fn(|cx| Pin::new(&mut paced).poll_next(cx)).await
        {
            let piece = piece.unwrap();
            assert!(!piece.is_empty() && piece.len() <= PIECE, "{}", piece.len());
            out.extend_from_slice(&piece);
        }
        assert_eq!(out, body);
    }
}
