//! Processes: list them and read one; acting on them is in `process_control`.

use super::{ApiError, AppState, auth::ReadAccess, error::responses::*, proc_lane::Share};
use crate::{
    collect::procs::{FieldSet, ProcessInfo, ProcessList, Query, SortKey, View},
    domain::Pid,
};
use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list).service(one);
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this user's processes.
    user: Option<String>,
    /// Only processes whose name or command line contains this.
    name: Option<String>,
    /// `cpu`, `memory`, `pid` (default), `name` or `started`.
    #[param(value_type = Option<super::openapi::SortBy>, inline)]
    sort: Option<String>,
    /// `asc` or `desc` (default: `desc` for cpu, memory and started, else `asc`).
    #[param(value_type = Option<super::openapi::Order>, inline)]
    order: Option<String>,
    /// How many to answer (default: all).
    #[param(minimum = 0, maximum = 18446744073709551615u64)]
    limit: Option<usize>,
    /// How many to skip first.
    #[param(minimum = 0, maximum = 18446744073709551615u64)]
    offset: Option<usize>,
    /// A comma list of fields, or `all` (default: the common ones); `pid` is
    /// always given. `user`, `rss_bytes` and `started` name `username`,
    /// `memory_info` and `create_time`. White space around names is ignored.
    // White space is Rust's (`str::trim`), which the parser applies.
    #[param(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(all[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*|(pid|ppid|name|cmdline|exe|cwd|username|uids|gids|status|terminal|create_time|cpu_percent|cpu_times|memory_percent|memory_info|nice|priority|num_threads|threads|num_fds|open_files|connections|memory_maps|num_ctx_switches|io_counters|io_delay_seconds|pgrp|tty_nr|user|rss_bytes|started)?[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(,[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(pid|ppid|name|cmdline|exe|cwd|username|uids|gids|status|terminal|create_time|cpu_percent|cpu_times|memory_percent|memory_info|nice|priority|num_threads|threads|num_fds|open_files|connections|memory_maps|num_ctx_switches|io_counters|io_delay_seconds|pgrp|tty_nr|user|rss_bytes|started)?[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)*)$"
    )]
    fields: Option<String>,
}

impl ListQuery {
    pub fn parse(&self) -> Result<Query, ApiError> {
        let sort = match self.sort.as_deref().unwrap_or("pid") {
            "cpu" => SortKey::Cpu,
            "memory" => SortKey::Memory,
            "pid" => SortKey::Pid,
            "name" => SortKey::Name,
            "started" => SortKey::Started,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "sort: '{other}' is not one of cpu, memory, pid, name, started"
                )));
            }
        };
        let descending = match self.order.as_deref() {
            None => matches!(sort, SortKey::Cpu | SortKey::Memory | SortKey::Started),
            Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "order: '{other}' is not asc or desc"
                )));
            }
        };
        Ok(Query {
            user: self.user.clone(),
            name: self.name.clone(),
            sort,
            descending,
            limit: self.limit,
            offset: self.offset.unwrap_or(0),
            fields: FieldSet::parse(self.fields.as_deref())?,
            view: View::default(),
        })
    }
}

/// Processes, filtered, sorted and paged, with the total before paging.
/// `cpu_percent` is per core: 100 means one core fully busy, as in top.
/// A command line is read up to its first 4 KiB (`cmdline_truncated` says
/// when there was more), and an answer holds at most 4 MiB of processes:
/// past that it stops short of `limit` with `truncated` true, and the rest
/// is asked for with `offset`.
#[utoipa::path(
    tag = "processes",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of processes; fields a permission hides are null", body = ProcessList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
        (status = 503, response = Overloaded),
    ),
    security((), ("bearer" = []))
)]
#[get("/processes")]
async fn list(
    state: web::Data<AppState>,
    who: ReadAccess,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut query = q.parse()?;
    query.view = view_of(&who);
    let (body, _) = state
        .processes
        .run(Share::of(&who.0), move |reader| {
            super::process_list::write(reader, &query)
        })
        .await?;
    Ok(listing(body))
}

/// A listing's answer, written by `process_list::write`.
pub fn listing(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body)
}

/// A caller without a token sees what an unprivileged local user would.
pub fn view_of(who: &ReadAccess) -> View {
    if who.0.is_anonymous() {
        View::Unprivileged
    } else {
        View::Full
    }
}

/// Parses the `{pid}` segment into a pid, or says why not (400).
pub fn pid_of(s: &str) -> Result<Pid, ApiError> {
    Ok(s.parse::<Pid>()?)
}

/// Every field of one process.
#[utoipa::path(
    tag = "processes",
    params(("pid" = i32, Path, description = "The process id", minimum = 1, maximum = 2147483647)),
    responses(
        (status = 200, description = "The process", body = ProcessInfo),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Overloaded),
    ),
    security((), ("bearer" = []))
)]
#[get("/processes/{pid}")]
async fn one(
    state: web::Data<AppState>,
    who: ReadAccess,
    pid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let pid = pid_of(&pid)?;
    let view = view_of(&who);
    state
        .processes
        .json(Share::of(&who.0), move |reader| {
            reader
                .one(pid.get(), view)
                .ok_or_else(|| ApiError::NotFound(format!("no process has pid {}", pid.get())))
        })
        .await
}
