//! Request bodies (SPEC §5): at most 64 KiB on every route, and none at all
//! where the route reads none. Only control routes read bodies, so a body
//! is read only once the caller has shown a control token: a stranger's
//! body is refused unread, and cannot hold a buffer (or the connection)
//! while the agent waits for it. A declared length over the limit is
//! refused before anything is read, and a chunked body is read at most one
//! byte past it.

use super::{ApiError, AppState, MAX_BODY, audit_trail, routes::RouteTable};
use crate::config::Scope;
use actix_web::{
    Error, HttpMessage, ResponseError,
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse, Url},
    http::{Method, header},
    middleware::Next,
    web::{self, BytesMut},
};
use futures_util::StreamExt;
use std::time::Duration;

/// How long a chunked body may take to arrive.
const BODY_TIME: Duration = Duration::from_secs(10);

pub async fn limit_body(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let refuse = |req: ServiceRequest, e: ApiError| {
        let res = e.error_response();
        Ok(req.into_response(res).map_into_right_body())
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    if declared.unwrap_or(0) == 0 && !chunked {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    if !routed(&req) {
        // No route serves this method here: the router's 404 or 405 is
        // the answer, and it reads no body.
        return Ok(next.call(req).await?.map_into_left_body());
    }
    if !reads_body(&req) {
        let e = ApiError::PayloadTooLarge("this route takes no request body; send none".into());
        return refuse(req, e);
    }
    // The refusal the handler would give, given before the body is read.
    if let Err(e) = control_caller(&req) {
        return refuse(req, e);
    }
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "the request body is over the limit of {MAX_BODY} bytes"
        ))
    };
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return refuse(req, too_large());
    }
    if declared.is_none() {
        let mut payload = req.take_payload();
        let mut body = BytesMut::new();
        // A slow sender must not hold a buffer (and a connection) open
        // for ever: the whole body arrives within BODY_TIME or not at all.
        let read = tokio::time::timeout(BODY_TIME, async {
            while let Some(chunk) = payload.next().await {
                let chunk = chunk?;
                if body.len() + chunk.len() > MAX_BODY {
                    return Ok::<_, Error>(false);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(true)
        })
        .await;
        match read {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return refuse(req, too_large()),
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                let e = ApiError::RequestTimeout(format!(
                    "the request body did not arrive within {} s",
                    BODY_TIME.as_secs()
                ));
                return refuse(req, e);
            }
        }
        req.set_payload(actix_web::dev::Payload::from(body.freeze()));
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Whether a route serves the method asked for on this path.
fn routed(req: &ServiceRequest) -> bool {
    let url = Url::new(req.uri().clone());
    req.app_data::<web::Data<RouteTable>>()
        .is_none_or(|t| t.serves(req.method().as_str(), url.path()))
}

/// Whether the route asked for reads a body: a control route taking one
/// (POST or PATCH). Matched on the percent-decoded path, as the router does.
fn reads_body(req: &ServiceRequest) -> bool {
    if !matches!(*req.method(), Method::POST | Method::PATCH) {
        return false;
    }
    let url = Url::new(req.uri().clone());
    req.request()
        .resource_map()
        .match_pattern(url.path())
        .is_some_and(|p| audit_trail::action_of(req.method(), &p).is_some())
}

/// The caller's control token, or the refusal its handler would answer.
fn control_caller(req: &ServiceRequest) -> Result<(), ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal("application state is missing".into()))?;
    state.auth.require(req.request(), Scope::Control).map(drop)
}
