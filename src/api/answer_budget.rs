//! Large answers held for their clients share one budget. An answer is
//! built whole before it is written (a process listing, a page of checks),
//! and it lives until its client has taken it: without a bound, many
//! clients that ask and read slowly would hold that many answers. Past the
//! budget a large answer is dropped at once and its client told to come
//! back (503 with Retry-After); small ones are never counted. Callers with
//! a token have a share of their own, which anonymous ones cannot take.

use super::ApiError;
use actix_web::{
    Error, ResponseError,
    body::{BodySize, BoxBody, EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web::{self, Bytes},
};
use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Answers up to this size are not counted: a connection's own buffers
/// are of this order anyway.
pub const SMALL: u64 = 64 * 1024;
/// The most bytes of large answers held at once for each share: two of
/// the largest process listings.
pub const BUDGET: usize = 8 << 20;

/// The budget, in KiB (a semaphore's permits are a `u32`): one share for
/// callers without a token, one for those with one.
pub struct AnswerBudget {
    anonymous: Arc<Semaphore>,
    tokens: Arc<Semaphore>,
}

impl Default for AnswerBudget {
    fn default() -> Self {
        let share = || Arc::new(Semaphore::new(BUDGET / 1024));
        Self {
            anonymous: share(),
            tokens: share(),
        }
    }
}

impl AnswerBudget {
    fn share(&self, token_holder: bool) -> Arc<Semaphore> {
        Arc::clone(if token_holder {
            &self.tokens
        } else {
            &self.anonymous
        })
    }
}

/// Middleware, inside compression (which would hide the size): counts each
/// large answer against the budget until its body is dropped.
pub async fn charge(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<Charged>>, Error> {
    let budget = req
        .app_data::<web::Data<super::AppState>>()
        .map(|s| s.answers.share(s.auth.holds_token(req.request())));
    let res = next.call(req).await?;
    let (Some(budget), BodySize::Sized(n)) = (budget, res.response().body().size()) else {
        return Ok(res
            .map_body(|_, b| Charged::new(b.boxed(), None))
            .map_into_left_body());
    };
    if n <= SMALL {
        return Ok(res
            .map_body(|_, b| Charged::new(b.boxed(), None))
            .map_into_left_body());
    }
    let kib = u32::try_from(n.div_ceil(1024)).unwrap_or(u32::MAX);
    match budget.try_acquire_many_owned(kib) {
        Ok(permit) => Ok(res
            .map_body(|_, b| Charged::new(b.boxed(), Some(permit)))
            .map_into_left_body()),
        Err(_) => {
            let e = ApiError::Overloaded(format!(
                "answers waiting for their callers to read them hold {} MiB already; retry in {} s",
                BUDGET >> 20,
                super::proc_lane::RETRY_AFTER_SECS
            ));
            let (req, _) = res.into_parts();
            Ok(ServiceResponse::new(req, e.error_response()).map_into_right_body())
        }
    }
}

/// A body and the share of the budget it holds until its last byte is
/// handed on. It is handed on in pieces: an answer given whole would leave
/// here at once, its memory held further on, uncounted.
pub struct Charged {
    body: BoxBody,
    pending: Bytes,
    permit: Option<OwnedSemaphorePermit>,
}

impl Charged {
    fn new(body: BoxBody, permit: Option<OwnedSemaphorePermit>) -> Self {
        Self {
            body,
            pending: Bytes::new(),
            permit,
        }
    }
}

impl MessageBody for Charged {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = &mut *self;
        let next = super::slow_clients::poll_piece(&mut this.body, &mut this.pending, cx);
        if matches!(next, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.permit = None;
        }
        next
    }
}
