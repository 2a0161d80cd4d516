//! Spawned processes and how they ended.

use super::{
    ApiError, AppState,
    auth::TokenAccess,
    blocking, bounded,
    error::{missing, responses::*},
};
use crate::store::Job;
use actix_web::{get, web};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list).service(one);
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// How many jobs, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Spawned processes, newest first.
#[utoipa::path(
    tag = "processes",
    params(JobsQuery),
    responses(
        (status = 200, description = "Jobs, newest first", body = Vec<Job>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    ),
    security(("bearer" = []))
)]
#[get("/jobs")]
async fn list(
    state: web::Data<AppState>,
    _: TokenAccess,
    q: web::Query<JobsQuery>,
) -> Result<web::Json<Vec<Job>>, ApiError> {
    let limit = bounded("limit", q.limit, 100, 1, 1000)?;
    let store = Arc::clone(&state.store);
    let mut jobs = blocking(move || Ok(store.jobs(limit)?)).await?;
    for j in &mut jobs {
        with_live_output(&state, j);
    }
    Ok(web::Json(jobs))
}

/// One job: command, pid, start, running or exit status, last 64 KiB of output.
#[utoipa::path(
    tag = "processes",
    params(("job_id" = i64, Path, description = "The job's id, from the spawn answer",
        minimum = -9223372036854775808i64, maximum = 9223372036854775807i64)),
    responses(
        (status = 200, description = "The job", body = Job),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    ),
    security(("bearer" = []))
)]
#[get("/jobs/{job_id}")]
async fn one(
    state: web::Data<AppState>,
    _: TokenAccess,
    id: web::Path<i64>,
) -> Result<web::Json<Job>, ApiError> {
    let id = id.into_inner();
    let store = Arc::clone(&state.store);
    let mut job = blocking(move || {
        store
            .job(id)
            .map_err(|e| missing(e, &format!("no job has id {id}")))
    })
    .await?;
    with_live_output(&state, &mut job);
    Ok(web::Json(job))
}

/// A running job's output is in memory until it ends.
fn with_live_output(state: &AppState, job: &mut Job) {
    if job.state == "running"
        && let Some((out, err)) = state.spawner.live_output(job.id)
    {
        job.stdout = out;
        job.stderr = err;
    }
}
