//! Requests that match no route: 405 with `Allow` when the path is known
//! under another method, else 404. The table comes from the OpenAPI document,
//! so it always agrees with the routes that exist.

use super::error::problem_response;
use actix_web::{
    HttpRequest, HttpResponse,
    dev::ResourceDef,
    http::{StatusCode, header},
    web,
};

pub struct RouteTable(Vec<(ResourceDef, Vec<&'static str>)>);

impl RouteTable {
    pub fn from_openapi(api: &utoipa::openapi::OpenApi) -> Self {
        let routes = api
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let ops = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ];
                let methods = ops.iter().filter(|(_, on)| *on).map(|(m, _)| *m).collect();
                (ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        Self(routes)
    }

    /// Whether some route serves `method` on `path` (HEAD as GET).
    pub fn serves(&self, method: &str, path: &str) -> bool {
        let method = if method == "HEAD" { "GET" } else { method };
        self.allowed(path).contains(&method)
    }

    /// Methods allowed on `path`, across every route that matches it.
    fn allowed(&self, path: &str) -> Vec<&'static str> {
        let mut m: Vec<&'static str> = self
            .0
            .iter()
            .filter(|(def, _)| def.is_match(path))
            .flat_map(|(_, methods)| methods.iter().copied())
            .collect();
        m.sort_unstable();
        m.dedup();
        m
    }
}

pub async fn fallback(req: HttpRequest, table: web::Data<RouteTable>) -> HttpResponse {
    let allowed = table.allowed(req.path());
    if allowed.is_empty() {
        return problem_response(
            StatusCode::NOT_FOUND,
            &format!(
                "no route {}; the API is described at /api-docs/openapi.json",
                req.path()
            ),
        );
    }
    let allow = allowed.join(", ");
    let mut res = problem_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!(
            "{} is not allowed on {}; use {allow}",
            req.method(),
            req.path()
        ),
    );
    if let Ok(v) = header::HeaderValue::from_str(&allow) {
        res.headers_mut().insert(header::ALLOW, v);
    }
    res
}
