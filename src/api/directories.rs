//! Watched directories, served from the background measurements.

use super::{AppState, auth::ReadAccess, error::responses::*};
use crate::directories::DirectoryView;
use actix_web::{get, web};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list);
}

/// Watched directories: bytes, files, share of their filesystem, when measured.
#[utoipa::path(
    tag = "host",
    responses(
        (status = 200, description = "Each `[[directories]]` entry as last measured", body = Vec<DirectoryView>),
        (status = 401, response = Unauthorized),
    ),
    security((), ("bearer" = []))
)]
#[get("/directories")]
async fn list(state: web::Data<AppState>, _: ReadAccess) -> web::Json<Vec<DirectoryView>> {
    web::Json(state.directories.views())
}
