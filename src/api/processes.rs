//! Processes: list them and read one; acting on them is in `process_control`.

use super::{ApiError, AppState, auth::ReadAccess, error::responses::*};
use crate::{
    collect::procs::{FieldSet, ProcessInfo, ProcessList, Query, SortKey},
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
    sort: Option<String>,
    /// `asc` or `desc` (default: `desc` for cpu, memory and started, else `asc`).
    order: Option<String>,
    /// How many to answer (default: all).
    limit: Option<usize>,
    /// How many to skip first.
    offset: Option<usize>,
    /// A comma list of fields, or `all` (default: the common ones).
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
        })
    }
}

/// Processes, filtered, sorted and paged, with the total before paging.
/// `cpu_percent` is per core: 100 means one core fully busy, as in top.
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
    _: ReadAccess,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = q.parse()?;
    state
        .processes
        .json(move |reader| Ok(reader.list(&query)))
        .await
}

/// Parses the `{pid}` segment into a pid, or says why not (400).
pub fn pid_of(s: &str) -> Result<Pid, ApiError> {
    Ok(s.parse::<Pid>()?)
}

/// Every field of one process.
#[utoipa::path(
    tag = "processes",
    params(("pid" = u32, Path, description = "The process id")),
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
    _: ReadAccess,
    pid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let pid = pid_of(&pid)?;
    state
        .processes
        .json(move |reader| {
            reader
                .one(pid.get())
                .ok_or_else(|| ApiError::NotFound(format!("no process has pid {}", pid.get())))
        })
        .await
}
