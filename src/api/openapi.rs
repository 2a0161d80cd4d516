//! The document's frame: info, tags and the bearer scheme. Paths and schemas
//! are collected from the handlers.

use super::error::{Problem, responses::*};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hostwatch",
        description = "Watches a Linux host: checks stored in SQLite and their history, the sampler, services, \
            processes and jobs, watched directories, and the agent itself. \
            Read routes answer without a token unless `auth.public_read` is off; control routes need a token \
            with scope `control`. Errors are `application/problem+json`."
    ),
    modifiers(&BearerScheme),
    // Paths and their schemas are collected from the handlers; the shared
    // problem responses they refer to are registered here.
    components(
        schemas(Problem),
        responses(
            BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge,
            UnsupportedMediaType, Internal, BadGateway, Unavailable, Overloaded, GatewayTimeout
        )
    ),
    tags(
        (name = "checks", description = "Stored checks and their history"),
        (name = "sampler", description = "The background sampler"),
        (name = "host", description = "Live views of the host and of the agent"),
        (name = "processes", description = "Processes, users, jobs: list, spawn, signal, renice"),
        (name = "services", description = "Watched services: state, history, start, stop, restart"),
        (name = "audit", description = "Control actions, allowed or refused"),
        (name = "health", description = "Liveness and Prometheus metrics"),
    )
)]
pub struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from the config (`hostwatch token`) or the generated `<database>.token` file"))
                    .build(),
            ),
        );
    }
}
