//! Exporting stored checks as CSV or NDJSON, streamed page by page so an
//! export of any size holds one page in memory.

use super::{ApiError, AppState, auth::ReadAccess, blocking, error::responses::*};
use crate::{
    domain::{Check, TimeRange},
    store::Store,
};
use actix_web::{HttpResponse, get, web, web::Bytes};
use serde::Deserialize;
use std::{
    fmt::Write,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc};
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(export);
}

/// Places for exports under way: one set for callers without a token, one
/// for those with one.
pub struct Exports {
    anonymous: Arc<Semaphore>,
    tokens: Arc<Semaphore>,
}

impl Default for Exports {
    fn default() -> Self {
        Self {
            anonymous: Arc::new(Semaphore::new(super::EXPORTS)),
            tokens: Arc::new(Semaphore::new(super::EXPORTS)),
        }
    }
}

impl Exports {
    fn place(&self, token_holder: bool) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        let share = if token_holder {
            &self.tokens
        } else {
            &self.anonymous
        };
        Arc::clone(share).try_acquire_owned()
    }
}

/// Checks per page: what an export holds while its client reads is a few
/// pages (some hundreds of KiB), so a page is small.
const PAGE: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Ndjson,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (one row per check, the scalar figures) or `ndjson` (one whole check per line).
    #[param(inline)]
    format: Format,
    /// Start, RFC 3339 (default: the oldest check); not after `until` (equal ends: an empty window).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// End, excluded, RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
}

/// Stored checks in time order, streamed as CSV or NDJSON.
#[utoipa::path(
    tag = "checks",
    params(ExportQuery),
    responses(
        (status = 200, description = "The checks, oldest first: CSV with a header row for `format=csv`, \
            one JSON check per line for `format=ndjson`",
            content((String = "text/csv"), (String = "application/x-ndjson"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Overloaded),
    ),
    security((), ("bearer" = []))
)]
#[get("/checks/export")]
async fn export(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    _: ReadAccess,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let range = TimeRange::parse(q.since.as_deref(), q.until.as_deref())?;
    let format = q.format;
    // Each export holds pages while its client reads; a few at a time, and
    // callers with a token have places of their own.
    let permit = state
        .exports
        .place(state.auth.holds_token(&req))
        .map_err(|_| {
            ApiError::Overloaded(format!(
                "{} exports are running for callers like you already; retry in {} s",
                super::EXPORTS,
                super::proc_lane::RETRY_AFTER_SECS
            ))
        })?;
    let (tx, rx) = mpsc::channel(2);
    let store = Arc::clone(&state.store);
    // Each page is read on a blocking thread and let go of before the next:
    // a slow client holds a channel slot, never a thread. A client that goes
    // away closes the channel and ends the task at its next page.
    actix_web::rt::spawn(produce(store, range, format, tx));
    let content_type = match format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Ndjson => "application/x-ndjson",
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .streaming(Chunks { rx, _place: permit }))
}

async fn produce(store: Arc<Store>, range: TimeRange, format: Format, tx: mpsc::Sender<Bytes>) {
    if format == Format::Csv
        && tx
            .send(Bytes::from_static(CSV_HEADER.as_bytes()))
            .await
            .is_err()
    {
        return;
    }
    // The span is taken once: checks stored while the export streams are
    // left for the next one, and each page starts where the last ended.
    let s = Arc::clone(&store);
    let (mut lo, hi) = match blocking(move || Ok(s.check_span(range)?)).await {
        Ok(Some(span)) => span,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, "export stopped early");
            return;
        }
    };
    loop {
        let s = Arc::clone(&store);
        let page = match blocking(move || Ok(s.checks_ascending(range, (lo, hi), PAGE)?)).await {
            Ok(p) => p,
            Err(e) => {
                // The status line is gone already: end the body short and say why in the log.
                tracing::error!(error = %e, "export stopped early");
                return;
            }
        };
        let mut out = String::new();
        for k in &page {
            match format {
                Format::Csv => csv_row(&mut out, k),
                Format::Ndjson => {
                    if let Ok(line) = serde_json::to_string(k) {
                        out.push_str(&line);
                        out.push('\n');
                    }
                }
            }
        }
        if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
            return;
        }
        match page.last() {
            Some(k) if page.len() == PAGE as usize => {
                lo = k.id.unwrap_or(i64::MAX).saturating_add(1)
            }
            _ => return,
        }
    }
}

const CSV_HEADER: &str = "id,taken_at,duration_ms,cpu_percent,load1,load5,load15,memory_total_bytes,memory_used_bytes,\
memory_available_bytes,memory_percent,swap_total_bytes,swap_used_bytes,swap_percent,io_read_bytes,io_written_bytes,\
io_received_bytes,io_sent_bytes\n";

fn csv_row(out: &mut String, k: &Check) {
    fn opt<T: std::fmt::Display>(out: &mut String, v: Option<T>) {
        out.push(',');
        if let Some(v) = v {
            let _ = write!(out, "{v}");
        }
    }
    let _ = write!(
        out,
        "{},{},{}",
        k.id.unwrap_or_default(),
        crate::domain::time::rfc3339(k.taken_at),
        k.duration_ms
    );
    let (c, m, io) = (k.cpu.as_ref(), k.memory.as_ref(), k.io.as_ref());
    opt(out, c.map(|c| c.percent));
    opt(out, c.map(|c| c.load1));
    opt(out, c.map(|c| c.load5));
    opt(out, c.map(|c| c.load15));
    opt(out, m.map(|m| m.total_bytes));
    opt(out, m.map(|m| m.used_bytes));
    opt(out, m.map(|m| m.available_bytes));
    opt(out, m.map(|m| m.percent));
    opt(out, m.map(|m| m.swap_total_bytes));
    opt(out, m.map(|m| m.swap_used_bytes));
    opt(out, m.map(|m| m.swap_percent));
    opt(out, io.map(|i| i.read_bytes));
    opt(out, io.map(|i| i.written_bytes));
    opt(out, io.map(|i| i.received_bytes));
    opt(out, io.map(|i| i.sent_bytes));
    out.push('\n');
}

/// The response body: chunks as the producer sends them, holding the
/// export's place until it is dropped.
struct Chunks {
    rx: mpsc::Receiver<Bytes>,
    _place: OwnedSemaphorePermit,
}

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|c| c.map(Ok))
    }
}
