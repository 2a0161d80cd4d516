//! The HTTP API: one module per resource, each owning its routes and their
//! OpenAPI paths; this module puts them together.

mod agent;
mod alerts;
pub mod answer_budget;
mod audit;
mod audit_rate;
mod audit_trail;
pub mod auth;
mod body_limit;
mod charts;
mod checks;
mod dashboard;
mod directories;
pub mod error;
mod export;
mod health;
mod history;
pub mod host_check;
mod jobs;
mod metrics;
mod notifications;
mod openapi;
mod probes;
mod proc_lane;
mod process_control;
mod process_list;
mod processes;
mod remote_write;
mod request_log;
mod routes;
mod sampler;
pub mod server;
mod services;
mod silences;
pub mod slow_clients;
mod users;

use crate::{
    collect::{AgentReader, SystemReader},
    control::spawn::Spawner,
    sampler::Sampler,
    services::Services,
    store::{AuditEntry, Store},
    watchdog::Watchdog,
};
use actix_web::{
    App, HttpResponse, middleware,
    web::{self, PayloadConfig},
};
use audit_rate::{Admit, Budget};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_actix_web::{AppExt, scope, service_config::ServiceConfig};
use utoipa_swagger_ui::{Config, SwaggerUi};

pub use error::ApiError;
pub use export::Exports;
pub use proc_lane::ProcLane;
pub use process_control::Signalled;

/// Exports that may run at once, for callers without a token and again
/// for those with one (see `export`).
pub const EXPORTS: usize = 2;

/// Largest request body accepted (SPEC §5).
pub const MAX_BODY: usize = 64 * 1024;

/// What handlers share.
pub struct AppState {
    pub store: Arc<Store>,
    pub sampler: Arc<Sampler>,
    pub services: Arc<Services>,
    /// Where every /proc walk of a request runs (see `proc_lane`).
    pub processes: ProcLane,
    pub spawner: Arc<Spawner>,
    pub directories: Arc<crate::directories::Directories>,
    pub auth: auth::Auth,
    /// Rules, probes and notifiers (SPEC §7).
    pub watchdog: Arc<Watchdog>,
    /// Receivers the history is pushed to (SPEC §8).
    pub remote_write: Arc<crate::remote_write::RemoteWrite>,
    pub system: Mutex<SystemReader>,
    pub agent: Mutex<AgentReader>,
    /// The names requests may carry in `Host` (see `host_check`).
    pub hosts: host_check::AllowedHosts,
    /// What large answers waiting for their clients may hold.
    pub answers: answer_budget::AnswerBudget,
    /// Exports under way; each holds a few pages while its client reads.
    pub exports: export::Exports,
    /// Open connections, watched for clients that stop reading.
    pub connections: Arc<slow_clients::Connections>,
    pub shutdown: CancellationToken,
}

impl AppState {
    /// Writes the audit row of a control token holder's request, within
    /// that token's rate (`audit_rate`).
    pub async fn audit(&self, entry: AuditEntry) {
        audit_trail::mark_recorded();
        let (budget, key) = self.auth.control_budget(&entry.actor);
        self.audit_within(entry, budget, key).await;
    }

    /// Writes an audit row when `budget` has room for `key`, with the rows
    /// dropped before it; counts it otherwise. A failure is logged, never
    /// hidden from the log.
    pub(crate) async fn audit_within(&self, entry: AuditEntry, budget: &Arc<Budget>, key: String) {
        let suppressed = match budget.admit(&key) {
            Admit::Write { suppressed } => suppressed,
            Admit::Drop { flush } => {
                if flush {
                    let store = Arc::clone(&self.store);
                    tokio::spawn(audit_rate::flush_later(Arc::clone(budget), key, store));
                }
                return;
            }
        };
        let store = Arc::clone(&self.store);
        let action = entry.action.clone();
        match web::block(move || store.record_audit_counted(&entry, suppressed)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, action, "could not write the audit row"),
            Err(e) => tracing::error!(error = %e, action, "could not write the audit row"),
        }
    }
}

/// Runs blocking work (SQLite, /proc) off the async workers.
pub async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    web::block(f)
        .await
        .map_err(|e| ApiError::Internal(format!("a worker thread failed: {e}")))?
}

/// Like `blocking`, and the answer is written as JSON there too: a large
/// answer then waits for its HTTP worker as bytes, counted by the answer
/// budget, not as the records it was made of while the worker writes
/// others' (measured: 500 requests for 1,000 checks held 400 MiB so).
pub async fn blocking_json<T, F>(f: F) -> Result<HttpResponse, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: serde::Serialize,
{
    let body = blocking(move || {
        serde_json::to_vec(&f()?)
            .map_err(|e| ApiError::Internal(format!("cannot write the answer: {e}")))
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body))
}

/// Every API route, for the app and for the OpenAPI document alike.
fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz)
        .service(metrics::metrics)
        .configure(dashboard::configure)
        .service(
            scope::scope("/api/v1")
                // gzip or deflate for clients that ask: the dashboard's
                // series, exports, long lists. Not the dashboard's assets
                // (gzipped already, their ETags name their bytes), nor
                // /metrics, whose scrape stays as cheap as it was.
                // Counted before compression, which hides an answer's size.
                .wrap(middleware::from_fn(answer_budget::charge))
                .wrap(middleware::Compress::default())
                .configure(sampler::configure)
                .configure(history::configure)
                .configure(charts::configure)
                .configure(export::configure)
                .configure(checks::configure)
                .configure(services::configure)
                .configure(processes::configure)
                .configure(process_control::configure)
                .configure(jobs::configure)
                .configure(users::configure)
                .configure(directories::configure)
                .configure(agent::configure)
                .configure(audit::configure)
                .configure(alerts::configure)
                .configure(probes::configure)
                .configure(notifications::configure)
                .configure(silences::configure)
                .configure(remote_write::configure),
        );
}

/// The OpenAPI document, collected from the handlers, with the answers
/// every route shares added.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut api) = App::new()
        .into_utoipa_app()
        .openapi(openapi::ApiDoc::openapi())
        .configure(configure)
        .split_for_parts();
    openapi::add_common_responses(&mut api);
    api
}

/// The actix service factory for one worker.
pub fn app(
    state: web::Data<AppState>,
    table: web::Data<RouteTable>,
    doc: web::Data<OpenApiJson>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (app, _) = App::new()
        .into_utoipa_app()
        .app_data(state)
        .app_data(table)
        .app_data(doc)
        .app_data(
            web::JsonConfig::default()
                .limit(MAX_BODY)
                .error_handler(error::json_error),
        )
        .app_data(PayloadConfig::new(MAX_BODY))
        .app_data(web::QueryConfig::default().error_handler(error::query_error))
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .configure(configure)
        .split_for_parts();
    app.service(web::resource("/swagger-ui").to(|| async {
        HttpResponse::PermanentRedirect()
            .insert_header(("Location", "/swagger-ui/"))
            .finish()
    }))
    .route("/api-docs/openapi.json", web::get().to(openapi_json))
    .service(SwaggerUi::new("/swagger-ui/{_:.*}").config(Config::from("/api-docs/openapi.json")))
    .default_service(web::to(routes::fallback))
    .wrap(middleware::from_fn(body_limit::limit_body))
    .wrap(middleware::from_fn(audit_trail::audit_refusals))
    // Before anything else reads the request: a misdirected one is not ours.
    .wrap(middleware::from_fn(host_check::check_host))
    // Every answer, however made, is watched until its client has it.
    .wrap(middleware::from_fn(slow_clients::pace))
    .wrap(middleware::ErrorHandlers::new().default_handler(error::ensure_problem))
    // Outermost, so the line has the status the caller gets.
    .wrap(middleware::from_fn(request_log::log))
}

pub use routes::RouteTable;

/// The OpenAPI document, serialized once and shared by every worker.
pub struct OpenApiJson(pub web::Bytes);

impl OpenApiJson {
    pub fn new(api: &utoipa::openapi::OpenApi) -> Result<Self, serde_json::Error> {
        Ok(Self(web::Bytes::from(serde_json::to_vec(api)?)))
    }
}

async fn openapi_json(doc: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.0.clone())
}

/// A numeric parameter within `lo..=hi`, or `default` when absent.
pub fn bounded(
    name: &str,
    v: Option<u32>,
    default: u32,
    lo: u32,
    hi: u32,
) -> Result<u32, ApiError> {
    match v {
        None => Ok(default),
        Some(v) if (lo..=hi).contains(&v) => Ok(v),
        Some(v) => Err(ApiError::BadRequest(format!(
            "{name}: {v} is out of range; use {lo} to {hi}"
        ))),
    }
}
