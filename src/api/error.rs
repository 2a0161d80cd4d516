//! The one place errors become HTTP: `ApiError` and problem+json (RFC 9457),
//! for our handlers and for actix's own rejections alike.

use crate::{sampler::SamplerError, services::ServiceError, store::StoreError};
use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    body::BoxBody,
    dev::ServiceResponse,
    error::{JsonPayloadError, PathError, QueryPayloadError},
    http::{StatusCode, header},
    middleware::ErrorHandlerResponse,
};
use serde::Serialize;
use utoipa::ToSchema;

/// A problem report (`application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"type": "urn:hostwatch:problem:bad-request", "title": "Bad Request",
    "status": 400, "detail": "limit: 0 is out of range; use 1 to 1000"}))]
pub struct Problem {
    /// A URN naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status's reason phrase.
    pub title: String,
    pub status: u16,
    /// What was wrong, in plain words, and where it helps what to do.
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request names a host this agent does not answer to.
    #[error("{0}")]
    Misdirected(String),
    #[error("{0}")]
    Unavailable(String),
    /// Too much of one kind of work is waiting; the client may retry.
    #[error("{0}")]
    Overloaded(String),
    #[error("{0}")]
    BadGateway(String),
    #[error("{0}")]
    GatewayTimeout(String),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("no such record".into()),
            StoreError::LimitReached(why) => ApiError::Conflict(why),
            StoreError::TooBroad(why) => ApiError::BadRequest(why),
            // The host's fault, and one that passes once it is fixed.
            StoreError::Full { .. } | StoreError::ReadOnly { .. } | StoreError::Replaced { .. } => {
                ApiError::Unavailable(format!("the agent cannot write its database: {e}"))
            }
            other => ApiError::Internal(format!("the agent's database failed: {other}")),
        }
    }
}

/// A store error where "not found" has a more useful detail than the default.
pub fn missing(e: StoreError, detail: &str) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound(detail.to_owned()),
        other => other.into(),
    }
}

impl From<SamplerError> for ApiError {
    fn from(e: SamplerError) -> Self {
        match e {
            SamplerError::ShuttingDown
            | SamplerError::Store(
                StoreError::Full { .. } | StoreError::ReadOnly { .. } | StoreError::Replaced { .. },
            ) => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let detail = e.to_string();
        match e {
            ServiceError::NotFound(_) => ApiError::NotFound(detail),
            ServiceError::Busy(_)
            | ServiceError::NotInstalled(_)
            | ServiceError::NoCommand { .. } => ApiError::Conflict(detail),
            ServiceError::CommandFailed { .. } => ApiError::BadGateway(detail),
            ServiceError::NotReached { .. } => ApiError::GatewayTimeout(detail),
        }
    }
}

impl From<crate::control::ControlError> for ApiError {
    fn from(e: crate::control::ControlError) -> Self {
        use crate::control::ControlError as C;
        let detail = e.to_string();
        match e {
            C::NotFound(_) | C::NotThread { .. } => ApiError::NotFound(detail),
            C::Forbidden(_) => ApiError::Forbidden(detail),
            C::BadRequest(_) => ApiError::BadRequest(detail),
            C::Failed(_) => ApiError::Internal(detail),
            C::Replaced(_) => ApiError::Conflict(detail),
        }
    }
}

impl From<crate::domain::ParseError> for ApiError {
    fn from(e: crate::domain::ParseError) -> Self {
        ApiError::BadRequest(e.0)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Misdirected(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::Unavailable(_) | ApiError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        // Overload is the agent protecting itself, not a fault: no error line.
        if status.is_server_error() && !matches!(self, ApiError::Overloaded(_)) {
            tracing::error!(status = status.as_u16(), error = %self, "request failed");
        }
        let mut res = problem_response(status, &self.to_string());
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        if matches!(self, ApiError::Overloaded(_)) {
            res.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(super::proc_lane::RETRY_AFTER_SECS),
            );
        }
        res
    }
}

pub fn problem_response(status: StatusCode, detail: &str) -> HttpResponse {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = Problem {
        kind: format!(
            "urn:hostwatch:problem:{}",
            title.to_ascii_lowercase().replace(' ', "-")
        ),
        title: title.to_owned(),
        status: status.as_u16(),
        detail: detail.to_owned(),
    };
    HttpResponse::build(status)
        .content_type("application/problem+json")
        .json(body)
}

pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let e = match &err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::PayloadTooLarge(
            format!("the request body is over the limit of {limit} bytes"),
        ),
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType(
            "the request body must be JSON: send Content-Type: application/json".into(),
        ),
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!("bad JSON body: {e}")),
        other => ApiError::BadRequest(format!("bad request body: {other}")),
    };
    e.into()
}

pub fn query_error(err: QueryPayloadError, req: &HttpRequest) -> actix_web::Error {
    let detail = match &err {
        QueryPayloadError::Deserialize(e) => e.to_string(),
        other => other.to_string(),
    };
    ApiError::BadRequest(format!("bad query `{}`: {detail}", req.query_string())).into()
}

pub fn path_error(err: PathError, req: &HttpRequest) -> actix_web::Error {
    let detail = match &err {
        PathError::Deserialize(e) => e.to_string(),
        other => other.to_string(),
    };
    ApiError::BadRequest(format!("bad path {}: {detail}", req.path())).into()
}

/// Turns any error response that is not problem+json yet (actix's own: an
/// unreadable body, an overflow, a panic caught by a worker) into one.
pub fn ensure_problem<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let detail = res
        .response()
        .error()
        .map(|e| e.to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let (req, _) = res.into_parts();
    let new: HttpResponse<BoxBody> = problem_response(status, &detail);
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, new).map_into_right_body(),
    ))
}

/// Reusable OpenAPI responses, so every route documents its problems alike.
pub mod responses {
    use super::Problem;
    use utoipa::ToResponse;

    #[derive(ToResponse)]
    #[response(
        description = "Bad input: the detail says which value and why",
        content_type = "application/problem+json"
    )]
    pub struct BadRequest(#[allow(dead_code)] Problem);

    #[derive(ToResponse)]
    #[response(
        description = "No token, or a token that is not valid",
        content_type = "application/problem+json"
    )]
    pub struct Unauthorized(#[allow(dead_code)] Problem);

    #[derive(ToResponse)]
    #[response(
        description = "The token lacks the scope this route needs",
        content_type = "application/problem+json"
    )]
    pub struct Forbidden(#[allow(dead_code)] Problem);

    #[derive(ToResponse)]
    #[response(
        description = "No such record",
        content_type = "application/problem+json"
    )]
    pub struct NotFound(#[allow(dead_code)] Problem);

    #[derive(ToResponse)]
    #[response(
        description = "The request body is over 64 KiB",
        content_type = "application/problem+json"
    )]
    pub struct PayloadTooLarge(#[allow(dead_code)] Problem);

    #[derive(ToResponse)]
    #[response(
        description = "A chunked request body did not arrive within 10 s",
        content_type = "application/problem+json"
    )]
    pub struct RequestTimeout(#[allow(dead_code)] Problem);

    #[derive(ToResponse)]
    #[response(
        description = "The Host header names a host this agent does not answer to (see server.allowed_hosts)",
        content_type = "application/problem+json"
    )]
    pub struct Misdirected(#[allow(dead_code)] Problem);

    #[derive(ToResponse)]
    #[response(
        description = "The request body is not JSON",
        content_type = "application/problem+json"
    )]
    pub struct UnsupportedMediaType(#[allow(dead_code)] Problem);

    #[derive(ToResponse)]
    #[response(
        description = "A fault of the agent or its host; the detail says which",
        content_type = "application/problem+json"
    )]
    pub struct Internal(#[allow(dead_code)] Problem);

    #[derive(ToResponse)]
    #[response(
        description = "The agent is shutting down, or cannot write its database (its filesystem is full or read-only); the detail says which",
        content_type = "application/problem+json"
    )]
    pub struct Unavailable(#[allow(dead_code)] Problem);

    #[derive(ToResponse)]
    #[response(
        description = "Too many heavy readings (process listings, every-metric series) are running or waiting; retry after `Retry-After` seconds",
        content_type = "application/problem+json",
        headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))
    )]
    pub struct Overloaded(#[allow(dead_code)] Problem);

    #[derive(ToResponse)]
    #[response(
        description = "The action conflicts with the state: another action is under way, or the service is not installed",
        content_type = "application/problem+json"
    )]
    pub struct Conflict(#[allow(dead_code)] Problem);

    #[derive(ToResponse)]
    #[response(
        description = "The manager's command failed: the detail gives its exit status and the tail of its stderr",
        content_type = "application/problem+json"
    )]
    pub struct BadGateway(#[allow(dead_code)] Problem);

    #[derive(ToResponse)]
    #[response(
        description = "The state asked for was not reached within the service's timeout",
        content_type = "application/problem+json"
    )]
    pub struct GatewayTimeout(#[allow(dead_code)] Problem);
}
