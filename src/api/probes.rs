//! The watchdog's probes (http, tcp, exec) and their recent results, from
//! memory: no probe is run by a request.

use super::{ApiError, AppState, auth::ReadAccess, bounded, error::responses::*};
use crate::{
    config::watchdog::{ProbeKind, ProbeSettings},
    watchdog::probes::{ProbeBook, ProbeResult},
};
use actix_web::{get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list).service(results);
}

/// A probe, its settings and its latest result.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProbeView {
    pub name: String,
    /// `http`, `tcp` or `exec`.
    #[schema(pattern = "^(http|tcp|exec)$")]
    pub kind: String,
    /// What it probes: the URL (without any user or password), the
    /// `host:port`, or the command.
    pub target: String,
    pub interval_seconds: f64,
    pub timeout_seconds: f64,
    /// The span `probe.latency_ratio` takes its minimum over.
    pub window_seconds: f64,
    /// The latest result; null before the first run.
    pub last: Option<ProbeResult>,
    /// The latest latency over the window's best; null until the window
    /// holds 5 successful results.
    pub latency_ratio: Option<f64>,
}

/// An exec probe's error holds what the command wrote to stderr, run as
/// the agent's user: like a job's output, it needs a token.
fn private(mut r: ProbeResult, p: &ProbeSettings, anonymous: bool) -> ProbeResult {
    if anonymous && p.kind == ProbeKind::Exec && r.error.is_some() {
        r.error = Some("the command failed (its output needs a token)".into());
    }
    r
}

impl ProbeView {
    fn of(book: &ProbeBook, p: &ProbeSettings, anonymous: bool) -> Self {
        let (kind, target) = match p.kind {
            ProbeKind::Http => ("http", p.url.as_deref().map(without_userinfo)),
            ProbeKind::Tcp => ("tcp", p.address.clone()),
            ProbeKind::Exec => ("exec", p.command.clone()),
        };
        Self {
            name: p.name.clone(),
            kind: kind.to_owned(),
            target: target.unwrap_or_default(),
            interval_seconds: p.interval.as_secs_f64(),
            timeout_seconds: p.timeout.as_secs_f64(),
            window_seconds: p.window.as_secs_f64(),
            last: book.latest(&p.name).map(|r| private(r, p, anonymous)),
            latency_ratio: book.latency_ratio(&p.name).filter(|r| r.is_finite()),
        }
    }
}

/// A URL with any `user:password@` taken out: a probe's credentials are
/// not the API's to show.
pub fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// The probes, in config order, each with its latest result.
#[utoipa::path(
    tag = "watchdog",
    responses(
        (status = 200, description = "The probes", body = Vec<ProbeView>),
        (status = 401, response = Unauthorized),
    ),
    security((), ("bearer" = []))
)]
#[get("/probes")]
async fn list(state: web::Data<AppState>, who: ReadAccess) -> web::Json<Vec<ProbeView>> {
    let book = state.watchdog.probes();
    let anonymous = who.0.is_anonymous();
    web::Json(
        book.names()
            .iter()
            .filter_map(|n| book.settings(n))
            .map(|p| ProbeView::of(book, &p, anonymous))
            .collect(),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// How many results, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// A probe's recent results, newest first (kept in memory: up to
/// `watchdog.probe_results` of them).
#[utoipa::path(
    tag = "watchdog",
    params(("name" = String, Path, description = "The probe's name"), ResultsQuery),
    responses(
        (status = 200, description = "Results, newest first", body = Vec<ProbeResult>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    ),
    security((), ("bearer" = []))
)]
#[get("/probes/{name}/results")]
async fn results(
    state: web::Data<AppState>,
    who: ReadAccess,
    name: web::Path<String>,
    q: web::Query<ResultsQuery>,
) -> Result<web::Json<Vec<ProbeResult>>, ApiError> {
    let limit = bounded("limit", q.limit, 100, 1, 1000)?;
    let book = state.watchdog.probes();
    let (Some(p), Some(found)) = (book.settings(&name), book.results(&name, limit as usize)) else {
        return Err(ApiError::NotFound(format!("no probe is named '{name}'")));
    };
    let anonymous = who.0.is_anonymous();
    Ok(web::Json(
        found
            .into_iter()
            .map(|r| private(r, &p, anonymous))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::without_userinfo;

    #[test]
    fn a_probe_url_is_shown_without_its_user_and_password() {
        assert_eq!(
            without_userinfo("http://u:secret@127.0.0.1:81/a@b?x=@"),
            "http://127.0.0.1:81/a@b?x=@"
        );
        assert_eq!(without_userinfo("https://h/x"), "https://h/x");
        assert_eq!(without_userinfo("not a url"), "not a url");
    }
}
