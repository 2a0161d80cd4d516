//! The document's frame: info, tags and the bearer scheme. Paths and schemas
//! are collected from the handlers; `add_common_responses` then adds the
//! answers every route shares, so no handler can forget them.

use super::error::{Problem, responses::*};
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::{
        Ref, RefOr,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hostwatch",
        description = "Watches a Linux host: checks stored in SQLite and their history, the sampler, services, \
            processes and jobs, watched directories, the agent itself, and the watchdog's rules, alerts, probes, \
            notifications and silences. \
            Read routes answer without a token unless `auth.public_read` is off; control routes need a token \
            with scope `control`. Errors are `application/problem+json`."
    ),
    modifiers(&BearerScheme),
    // Paths and their schemas are collected from the handlers; the shared
    // problem responses they refer to are registered here, and so is the
    // optional sampler body, which its route names by reference (see there).
    components(
        schemas(Problem, super::sampler::StartRequest),
        responses(
            BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, RequestTimeout,
            UnsupportedMediaType, Misdirected, Internal, BadGateway, Unavailable, Overloaded, GatewayTimeout
        )
    ),
    tags(
        (name = "checks", description = "Stored checks and their history"),
        (name = "sampler", description = "The background sampler"),
        (name = "host", description = "Live views of the host and of the agent"),
        (name = "processes", description = "Processes, users, jobs: list, spawn, signal, renice"),
        (name = "services", description = "Watched services: state, history, start, stop, restart"),
        (name = "watchdog", description = "Rules, alerts, probes, notifications and silences"),
        (name = "audit", description = "Control actions, allowed or refused"),
        (name = "health", description = "Liveness and Prometheus metrics"),
        (name = "dashboard", description = "The built-in dashboard page and its assets"),
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

// The enums below only describe string parameters: each handler parses its
// own string (and says what it expected), so the variants are never built.

/// What to sort by.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum SortBy {
    Cpu,
    Memory,
    Pid,
    Name,
    Started,
}

/// A sort order.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Order {
    Asc,
    Desc,
}

/// The metric: `cpu`, `memory`, `swap`, `load1`, or `disk` (of the filesystem at `mount`).
// As `crate::domain::Metric::NAMES`.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum MetricName {
    Cpu,
    Memory,
    Swap,
    Load1,
    Disk,
}

/// Adds the answers that do not depend on the handler: 413 and 408 on every
/// route (the body limit is checked before any handler runs), 421 on every
/// route (so is the `Host` header), 503 on every `/api/v1` route (a large
/// answer past the answer budget, see `answer_budget`) and 401 on every
/// route that reads a token (a bad token is refused even where none is needed).
pub fn add_common_responses(api: &mut utoipa::openapi::OpenApi) {
    for (path, item) in api.paths.paths.iter_mut() {
        let budgeted = path.starts_with("/api/v1/");
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for op in operations.into_iter().flatten() {
            let takes_token = op.security.iter().flatten().any(|requirement| {
                serde_json::to_value(requirement)
                    .is_ok_and(|v| v.as_object().is_some_and(|m| m.contains_key("bearer")))
            });
            let responses = &mut op.responses.responses;
            let mut add = |status: &str, name: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
            };
            add("413", "PayloadTooLarge");
            add("408", "RequestTimeout");
            add("421", "Misdirected");
            if budgeted {
                add("503", "Overloaded");
            }
            if takes_token {
                add("401", "Unauthorized");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{
        agent, alerts, audit, charts, checks, dashboard, directories, export, health, history,
        jobs, metrics, notifications, probes, process_control, processes, remote_write, sampler,
        services, silences, users,
    };
    use actix_web::App;
    use serde_json::Value;
    use std::collections::BTreeMap;
    use utoipa_actix_web::{AppExt, scope, service_config::ServiceConfig};

    /// A module's name, the prefix `api::configure` mounts it under, and its routes.
    type Module = (&'static str, &'static str, fn(&mut ServiceConfig));

    const MODULES: [Module; 21] = [
        ("health", "", |cfg| {
            cfg.service(health::healthz).service(metrics::metrics);
        }),
        ("dashboard", "", dashboard::configure),
        ("sampler", "/api/v1", sampler::configure),
        ("history", "/api/v1", history::configure),
        ("charts", "/api/v1", charts::configure),
        ("export", "/api/v1", export::configure),
        ("checks", "/api/v1", checks::configure),
        ("services", "/api/v1", services::configure),
        ("processes", "/api/v1", processes::configure),
        ("process_control", "/api/v1", process_control::configure),
        ("jobs", "/api/v1", jobs::configure),
        ("users", "/api/v1", users::configure),
        ("directories", "/api/v1", directories::configure),
        ("agent", "/api/v1", agent::configure),
        ("audit", "/api/v1", audit::configure),
        ("alerts", "/api/v1", alerts::configure),
        ("probes", "/api/v1", probes::configure),
        ("notifications", "/api/v1", notifications::configure),
        ("silences", "/api/v1", silences::configure),
        ("remote_write", "/api/v1", remote_write::configure),
        ("frame only", "/api/v1", |_| {}),
    ];

    /// The document one module alone would give, as JSON.
    fn alone(prefix: &str, configure: fn(&mut ServiceConfig)) -> Value {
        let (_, api) = App::new()
            .into_utoipa_app()
            .openapi(<super::ApiDoc as utoipa::OpenApi>::openapi())
            .service(scope::scope(prefix).configure(configure))
            .split_for_parts();
        serde_json::to_value(api).expect("the document serializes")
    }

    #[test]
    fn no_two_schemas_share_a_component_name() {
        // Merging keeps one schema per name, silently: compare each module's
        // own schemas, where a second shape under the same name still shows.
        let mut seen: BTreeMap<String, (&str, Value)> = BTreeMap::new();
        let mut clashes = Vec::new();
        for (module, prefix, configure) in MODULES {
            let doc = alone(prefix, configure);
            let schemas = doc["components"]["schemas"].as_object().cloned();
            for (name, schema) in schemas.unwrap_or_default() {
                match seen.get(&name) {
                    Some((first, s)) if *s != schema => {
                        clashes.push(format!("{name}: {first} and {module} differ"));
                    }
                    Some(_) => {}
                    None => {
                        seen.insert(name, (module, schema));
                    }
                }
            }
        }
        assert!(clashes.is_empty(), "{clashes:#?}");
        assert!(seen.contains_key("ProcessCpuTimes") && seen.contains_key("HostCpuTimes"));
    }

    /// Every (path, method) of a document.
    fn operations(doc: &Value) -> Vec<(String, String)> {
        let mut ops: Vec<(String, String)> = doc["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(path, item)| {
                let methods = item.as_object().into_iter().flat_map(|m| m.keys());
                methods.map(move |m| (path.clone(), m.clone()))
            })
            .collect();
        ops.sort();
        ops
    }

    #[test]
    fn the_modules_checked_are_every_module_served() {
        let whole = serde_json::to_value(super::super::openapi()).expect("serializes");
        let mut checked: Vec<(String, String)> = MODULES
            .iter()
            .flat_map(|(_, prefix, configure)| operations(&alone(prefix, *configure)))
            .collect();
        checked.sort();
        assert_eq!(checked, operations(&whole));
    }

    #[test]
    fn every_operation_documents_413_421_and_every_token_route_401() {
        let doc = serde_json::to_value(super::super::openapi()).expect("serializes");
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("item") {
                let responses = &op["responses"];
                assert!(responses.get("413").is_some(), "{method} {path}: no 413");
                assert!(responses.get("421").is_some(), "{method} {path}: no 421");
                let security = op["security"].as_array().cloned().unwrap_or_default();
                if security.iter().any(|s| s.get("bearer").is_some()) {
                    assert!(responses.get("401").is_some(), "{method} {path}: no 401");
                }
            }
        }
    }
}
