//! Users running processes, and each user's processes.

use super::{
    ApiError, AppState, auth::ReadAccess, error::responses::*, proc_lane::Share,
    processes::ListQuery,
};
use crate::collect::procs::{ProcessList, UserSummary};
use actix_web::{HttpResponse, get, web};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list).service(processes);
}

/// Users running processes, most processes first.
#[utoipa::path(
    tag = "processes",
    responses(
        (status = 200, description = "Users and how many processes each runs", body = Vec<UserSummary>),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
        (status = 503, response = Overloaded),
    ),
    security((), ("bearer" = []))
)]
#[get("/users")]
async fn list(state: web::Data<AppState>, who: ReadAccess) -> Result<HttpResponse, ApiError> {
    state
        .processes
        .json(Share::of(&who.0), |reader| Ok(reader.users()))
        .await
}

/// One user's processes; takes the filters, sort, paging and fields of `/processes`.
#[utoipa::path(
    tag = "processes",
    params(("username" = String, Path, description = "A user name"), ListQuery),
    responses(
        (status = 200, description = "The user's processes", body = ProcessList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Overloaded),
    ),
    security((), ("bearer" = []))
)]
#[get("/users/{username}/processes")]
async fn processes(
    state: web::Data<AppState>,
    who: ReadAccess,
    username: web::Path<String>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut query = q.parse()?;
    query.view = super::processes::view_of(&who);
    let username = username.into_inner();
    query.user = Some(username.clone());
    let (body, _) = state
        .processes
        .run(Share::of(&who.0), move |reader| {
            let (body, total) = super::process_list::write(reader, &query)?;
            if total == 0 && !reader.user_exists(&username) {
                return Err(ApiError::NotFound(format!("no user is named '{username}'")));
            }
            Ok((body, total))
        })
        .await?;
    Ok(super::processes::listing(body))
}
