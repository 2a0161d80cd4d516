//! The application: open the store, start the workers, bind the server;
//! and stop it all in order. Binding port 0 gives tests a port of their own.

use crate::{
    api::{self, AppState, ProcLane, RouteTable, auth::Auth},
    collect::{AgentReader, Collector, SystemReader},
    config::Settings,
    control::spawn::Spawner,
    sampler::Sampler,
    services::{Host, Services},
    store::{Store, StoreError},
    tokens,
};
use actix_web::{dev::ServerHandle, web};
use std::{
    net::TcpListener,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the host: {0}")]
    Collect(#[from] crate::collect::CollectError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The generated token's file is unsafe or unreadable; the message
    /// names the file and the fix.
    #[error(transparent)]
    Token(#[from] tokens::TokenFileError),
    #[error("the HTTP server failed: {0}")]
    Server(std::io::Error),
    #[error("cannot start the process-reading thread: {0}")]
    Thread(std::io::Error),
    #[error("watchdog: {0}")]
    Watchdog(#[from] crate::watchdog::WatchdogError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    RemoteWrite(#[from] crate::remote_write::RemoteWriteError),
}

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    stop: StopHandle,
    sampler: Arc<Sampler>,
    store: Arc<Store>,
    tasks: Vec<JoinHandle<()>>,
    proc_lane: std::thread::JoinHandle<()>,
}

/// Stops a running application from anywhere (a signal, a test).
#[derive(Clone)]
pub struct StopHandle {
    server: ServerHandle,
    shutdown: CancellationToken,
}

impl StopHandle {
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.server.stop(true).await;
    }
}

/// Blocking threads each HTTP worker may run at once: SQLite reads and
/// small /proc reads. Process listings have a lane of their own.
const BLOCKING_PER_WORKER: usize = 2;

/// How long a connection may stay open with no request.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// How long a new connection may stay silent, before the handshake and
/// HEAD_TIME start: a connection's slot is held at most FIRST_BYTES +
/// HANDSHAKE + HEAD_TIME before its first request is read.
const FIRST_BYTES: Duration = Duration::from_secs(2);
/// How long a TLS handshake may take (actix-web's default).
const HANDSHAKE: Duration = Duration::from_secs(3);
/// How long a request's line and headers may take to arrive.
const HEAD_TIME: Duration = Duration::from_secs(5);

/// Connections each HTTP worker holds at once (actix's default is 25,000):
/// past it, new ones wait in the kernel's backlog until one closes, so a
/// flood costs bounded memory and file descriptors. Idle and slow ones
/// close within KEEP_ALIVE or HEAD_TIME, so the bound is met only by a
/// flood that keeps opening more.
const MAX_CONNECTIONS: usize = 4096;

/// How long in-flight requests get to finish on shutdown.
const DRAIN: Duration = Duration::from_secs(2);

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        // Certificate problems stop start-up before anything is opened.
        let tls = match (&settings.server.tls_cert, &settings.server.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
            _ => None,
        };
        let store = Arc::new(Store::open(&settings.storage.path)?);
        // Bind before any worker starts, so a port in use fails start-up
        // with nothing left running.
        let addr = settings.server.listen;
        if !addr.ip().is_loopback() && settings.auth.public_read {
            tracing::warn!(%addr, "listening beyond loopback with auth.public_read = true: anyone who reaches the port can read");
        }
        if !addr.ip().is_loopback() && tls.is_none() {
            tracing::warn!(%addr, "listening beyond loopback without TLS: tokens and answers cross the network in the clear; set server.tls_cert and server.tls_key");
        }
        let listener =
            TcpListener::bind(addr).map_err(|source| StartupError::Bind { addr, source })?;
        let mut token_list = settings.auth.tokens.clone();
        if token_list.is_empty() {
            let (generated, path) = tokens::load_or_create(&settings.storage.path)?;
            tracing::info!(file = %path.display(), "no token configured: the control token is in this file");
            token_list.push(generated);
        }
        let lost = store.mark_lost_jobs()?;
        if lost > 0 {
            tracing::warn!(
                jobs = lost,
                "jobs still running when the agent last stopped are marked lost"
            );
        }
        let spawner = Arc::new(Spawner::new(
            settings.control.spawn_allow.clone(),
            settings.control.spawn_env.clone(),
            Arc::clone(&store),
            tokio::runtime::Handle::current(),
        ));
        let shutdown = CancellationToken::new();
        let collector = Collector::new(settings.sampler.top_processes)?;
        let services = Arc::new(Services::new(settings.services.clone(), Host::default()));
        let sampler = Sampler::new(
            collector,
            Arc::clone(&services),
            Arc::clone(&store),
            settings.sampler.interval,
            shutdown.clone(),
        );
        if settings.sampler.autostart {
            sampler.start(None).await.ok();
        }
        let (directories, mut tasks) = crate::directories::start(&settings.directories, &shutdown);
        let watchdog = crate::watchdog::Watchdog::new(
            &settings,
            Arc::clone(&store),
            Arc::clone(&services),
            Arc::clone(&spawner),
        )?;
        tasks.extend(watchdog.start(&shutdown)?);
        let receivers: Vec<_> = settings
            .remote_write
            .iter()
            .map(|r| r.get_ref().clone())
            .collect();
        let (remote_write, senders) =
            crate::remote_write::RemoteWrite::start(&receivers, &store, &shutdown)?;
        tasks.extend(senders);
        tasks.push(tokio::spawn(crate::memory::keep_trimmed(shutdown.clone())));
        tasks.push(tokio::spawn(crate::store::retention::run(
            Arc::clone(&store),
            crate::store::retention::Retention {
                checks: settings.storage.retention,
                rollups: settings.storage.rollup_retention,
                audit: settings.storage.audit_retention,
            },
            shutdown.clone(),
        )));

        let connections = api::slow_clients::Connections::new();
        tasks.push(tokio::spawn(
            Arc::clone(&connections).watch(shutdown.clone()),
        ));
        let (processes, proc_lane) =
            ProcLane::start(shutdown.clone()).map_err(StartupError::Thread)?;
        let state = web::Data::new(AppState {
            store: Arc::clone(&store),
            sampler: Arc::clone(&sampler),
            services,
            processes,
            spawner,
            directories,
            auth: Auth::new(token_list, settings.auth.public_read),
            watchdog,
            remote_write,
            system: Mutex::new(SystemReader::new()?),
            agent: Mutex::new(AgentReader::new()),
            hosts: api::host_check::AllowedHosts::new(addr.ip(), &settings.server.allowed_hosts),
            answers: api::answer_budget::AnswerBudget::default(),
            exports: api::Exports::default(),
            connections: Arc::clone(&connections),
            shutdown: shutdown.clone(),
        });
        let api_doc = api::openapi();
        let table = web::Data::new(RouteTable::from_openapi(&api_doc));
        let doc = web::Data::new(
            api::OpenApiJson::new(&api_doc).map_err(|e| StartupError::Server(e.into()))?,
        );
        drop(api_doc);
        let port = listener.local_addr().map_err(StartupError::Server)?.port();
        let limits = api::server::Limits {
            workers: settings.server.workers,
            blocking_per_worker: BLOCKING_PER_WORKER,
            max_connections: MAX_CONNECTIONS,
            keep_alive: KEEP_ALIVE,
            first_bytes: FIRST_BYTES,
            head_time: HEAD_TIME,
            handshake: HANDSHAKE,
            // An answer its client stops reading is cut (slow_clients).
            disconnect: Duration::from_secs(1),
            drain: DRAIN,
        };
        let https = tls.is_some();
        let server = api::server::run(listener, tls, limits, connections, move || {
            api::app(state.clone(), table.clone(), doc.clone())
        })
        .map_err(|source| StartupError::Bind { addr, source })?;
        // `port` last: tests and scripts read it from the end of the line.
        tracing::info!(address = %addr.ip(), https, port, "listening");
        let stop = StopHandle {
            server: server.handle(),
            shutdown,
        };
        Ok(Self {
            port,
            server,
            stop,
            sampler,
            store,
            tasks,
            proc_lane,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Serves until stopped, then stops the sampler and the background
    /// tasks and folds the WAL into the database file.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let served = self.server.await;
        self.stop.shutdown.cancel();
        self.sampler.stop().await;
        for t in self.tasks {
            let _ = t.await;
        }
        let lane = self.proc_lane;
        if !matches!(
            tokio::task::spawn_blocking(move || lane.join()).await,
            Ok(Ok(()))
        ) {
            tracing::warn!("the process-reading thread ended abnormally");
        }
        let store = self.store;
        match tokio::task::spawn_blocking(move || store.checkpoint()).await {
            Ok(Err(e)) => tracing::warn!(error = %e, "checkpoint on shutdown failed"),
            Err(e) => tracing::warn!(error = %e, "checkpoint on shutdown failed"),
            Ok(Ok(())) => {}
        }
        tracing::info!("stopped");
        served.map_err(StartupError::Server)
    }
}

/// Raises the soft limit on open files to the hard one: watched processes,
/// pidfds and connections all take descriptors, and the default 1024 is a
/// limit a local user could run the agent into.
pub fn raise_open_files() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if l.current < l.maximum {
        l.current = l.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, l) {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
        }
    }
}
