//! The HTTP server: the API's `App` on actix-server, as `HttpServer` would
//! run it, with one step in front of actix-http. A connection gets its
//! dispatcher, and with it two 8 KiB buffers actix-http allocates up front,
//! only once its first bytes have arrived; until then it is a socket and a
//! small future. A flood of connections that never send anything therefore
//! costs about 1 KiB each instead of 10, and each is closed after
//! `first_bytes`. Everything else is what `HttpServer` sets up,
//! including its graceful-shutdown hook (doc-hidden in actix-http; the
//! versions are pinned by Cargo.lock and the stop test would catch a change).

use crate::api::slow_clients::Connections;
use actix_http::{
    HttpService, Protocol, TlsAcceptorConfig, body::MessageBody, error::DispatchError,
};
use actix_server::{GracefulShutdownSignal, Server};
use actix_service::{IntoServiceFactory, ServiceFactoryExt, fn_service, map_config};
use actix_tls::accept::{TlsError, rustls_0_23::TlsStream};
use actix_web::{
    App,
    dev::{AppConfig, ServiceFactory, ServiceRequest, ServiceResponse},
};
use rustls::ServerConfig;
use std::{io, net::TcpListener, sync::Arc, time::Duration};
use tokio::net::TcpStream;

/// What each connection and the server as a whole may use.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub workers: usize,
    /// Blocking threads per worker (SQLite and small /proc reads).
    pub blocking_per_worker: usize,
    /// Connections each worker holds at once; past it new ones wait in the
    /// kernel's backlog.
    pub max_connections: usize,
    /// How long a connection may stay open with no request.
    pub keep_alive: Duration,
    /// How long a new connection may stay silent before its first byte
    /// (short: a real client sends at once, and this wait comes before
    /// the TLS handshake and `head_time`, which then start).
    pub first_bytes: Duration,
    /// How long a request's line and headers may take to arrive.
    pub head_time: Duration,
    /// How long a TLS handshake may take.
    pub handshake: Duration,
    /// How long a closing connection gets to flush.
    pub disconnect: Duration,
    /// How long in-flight requests get to finish on shutdown.
    pub drain: Duration,
}

/// Starts serving `app` on `listener` (HTTPS when `tls` is given); the
/// returned server runs once polled or spawned.
pub fn run<F, T, B>(
    listener: TcpListener,
    tls: Option<ServerConfig>,
    limits: Limits,
    connections: Arc<Connections>,
    app: F,
) -> io::Result<Server>
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let addr = listener.local_addr()?;
    let builder = Server::build()
        .workers(limits.workers)
        .worker_max_blocking_threads(limits.blocking_per_worker)
        .max_concurrent_connections(limits.max_connections)
        .disable_signals()
        .shutdown_timeout(limits.drain.as_secs());
    // On stop, connections idle between requests and ones that never sent
    // anything close at once instead of holding the drain to its end.
    let stopping = builder.graceful_shutdown_signal();
    // The App's connection info (scheme, host and address fallbacks) is
    // read by nothing here; actix-web's own constructor for it is private.
    let config = |()| AppConfig::default();
    // The settings both listeners share; a macro because the builder's
    // type depends on the stream and the service it will be given.
    macro_rules! http_builder {
        ($limits:expr, $addr:expr, $stopping:expr) => {
            HttpService::build()
                .graceful_shutdown_signal(move || {
                    let stopping = $stopping.clone();
                    async move { stopping.notified().await }
                })
                .keep_alive($limits.keep_alive)
                .client_request_timeout($limits.head_time)
                .client_disconnect_timeout($limits.disconnect)
                .local_addr($addr)
        };
    }
    let builder = match tls {
        None => builder.listen("hostwatch", listener, move || {
            let watched = Arc::clone(&connections);
            let (gate, stopping) = (stopping.clone(), stopping.clone());
            let http = http_builder!(limits, addr, stopping)
                .on_connect_ext(move |io: &TcpStream, ext| watched.on_connect(io, ext))
                .finish(map_config(
                    app().into_factory().map_err(|e| e.error_response()),
                    config,
                ));
            fn_service(move |io: TcpStream| {
                let gate = gate.clone();
                async move {
                    first_bytes(&io, limits.first_bytes, &gate)
                        .await
                        .map_err(DispatchError::Io)?;
                    let peer = io.peer_addr().ok();
                    Ok((io, Protocol::Http1, peer))
                }
            })
            .and_then(http)
        })?,
        Some(tls) => builder.listen("hostwatch-tls", listener, move || {
            let watched = Arc::clone(&connections);
            let (gate, stopping) = (stopping.clone(), stopping.clone());
            let http = http_builder!(limits, addr, stopping)
                .secure()
                .on_connect_ext(move |io: &TlsStream<TcpStream>, ext| watched.on_connect(io, ext))
                .finish(map_config(
                    app().into_factory().map_err(|e| e.error_response()),
                    config,
                ))
                .rustls_0_23_with_config(
                    tls.clone(),
                    TlsAcceptorConfig::default().handshake_timeout(limits.handshake),
                );
            fn_service(move |io: TcpStream| {
                let gate = gate.clone();
                async move {
                    first_bytes(&io, limits.first_bytes, &gate)
                        .await
                        .map_err(TlsError::Tls)?;
                    Ok(io)
                }
            })
            .and_then(http)
        })?,
    };
    Ok(builder.run())
}

/// Waits until `io` has something to read (a request, a TLS hello, or its
/// close), for at most `within`, and not past the server's stop.
async fn first_bytes(
    io: &TcpStream,
    within: Duration,
    stopping: &GracefulShutdownSignal,
) -> io::Result<()> {
    tokio::select! {
        ready = io.readable() => ready,
        () = tokio::time::sleep(within) => Err(io::ErrorKind::TimedOut.into()),
        () = stopping.notified() => Err(io::ErrorKind::ConnectionAborted.into()),
    }
}
