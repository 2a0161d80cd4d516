//! The 64 KiB body limit on every route, also on routes that read no body
//! (SPEC §5): a declared length over it is refused before anything is read,
//! and a chunked body is read at most one byte past it.

use super::{ApiError, MAX_BODY};
use actix_web::{
    Error, HttpMessage, ResponseError,
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header,
    middleware::Next,
    web::BytesMut,
};
use futures_util::StreamExt;
use std::time::Duration;

/// How long a chunked body may take to arrive.
const BODY_TIME: Duration = Duration::from_secs(10);

pub async fn limit_body(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "the request body is over the limit of {MAX_BODY} bytes"
        ))
    };
    match declared {
        Some(n) if n > MAX_BODY as u64 => {
            let res = too_large().error_response();
            return Ok(req.into_response(res).map_into_right_body());
        }
        Some(_) => {}
        None if req.headers().contains_key(header::TRANSFER_ENCODING) => {
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
            let refused = match read {
                Ok(Ok(true)) => None,
                Ok(Ok(false)) => Some(too_large()),
                Ok(Err(e)) => return Err(e),
                Err(_) => Some(ApiError::RequestTimeout(format!(
                    "the request body did not arrive within {} s",
                    BODY_TIME.as_secs()
                ))),
            };
            if let Some(e) = refused {
                let res = e.error_response();
                return Ok(req.into_response(res).map_into_right_body());
            }
            req.set_payload(actix_web::dev::Payload::from(body.freeze()));
        }
        None => {}
    }
    Ok(next.call(req).await?.map_into_left_body())
}
