//! Who is asking: bearer tokens checked against the configured SHA-256
//! hashes, and the two extractors that guard routes by scope. A refused
//! control request is written to the audit trail like an allowed one.

use super::{AppState, error::ApiError};
use crate::{config::Scope, store::AuditEntry, tokens};
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, http::header, web};
use std::{future::Future, pin::Pin};

/// Who the request log names as the caller: the token's name, `anonymous`
/// or `(invalid token)`; never the token.
#[derive(Debug, Clone)]
pub struct CallerName(pub String);

impl CallerName {
    fn of(who: &Result<Option<Identity>, ApiError>) -> Self {
        Self(match who {
            Ok(Some(id)) => id.name.clone(),
            Ok(None) => "anonymous".into(),
            Err(_) => "(invalid token)".into(),
        })
    }
}

/// The configured tokens and whether reads need one.
pub struct Auth {
    tokens: Vec<crate::config::TokenSettings>,
    public_read: bool,
}

/// The caller, as far as the token says.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The token's name; `anonymous` for a public read without a token.
    pub name: String,
    pub scope: Scope,
}

impl Auth {
    pub fn new(tokens: Vec<crate::config::TokenSettings>, public_read: bool) -> Self {
        Self {
            tokens,
            public_read,
        }
    }

    /// The identity behind the request's token, `None` when it sent none.
    fn identify(&self, req: &HttpRequest) -> Result<Option<Identity>, ApiError> {
        let Some(value) = req.headers().get(header::AUTHORIZATION) else {
            return Ok(None);
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
            })?;
        let hash = tokens::sha256(token);
        self.tokens
            .iter()
            .find(|t| constant_time_eq(&t.sha256, &hash))
            .map(|t| {
                Some(Identity {
                    name: t.name.clone(),
                    scope: t.scope,
                })
            })
            .ok_or_else(|| ApiError::Unauthorized("the token is not valid".into()))
    }

    /// The caller's name for the log, for a route that did not ask.
    pub(crate) fn caller_name(&self, req: &HttpRequest) -> CallerName {
        CallerName::of(&self.identify(req))
    }

    fn require(&self, req: &HttpRequest, scope: Scope) -> Result<Identity, ApiError> {
        let who = self.identify(req);
        // The request log reads it, so the token is hashed once per request.
        req.extensions_mut().insert(CallerName::of(&who));
        match (who?, scope) {
            (None, Scope::Read) if self.public_read => Ok(Identity {
                name: "anonymous".into(),
                scope: Scope::Read,
            }),
            (None, _) => Err(ApiError::Unauthorized(format!(
                "this route needs a token with scope `{}`: send Authorization: Bearer <token>",
                scope.as_str()
            ))),
            (Some(id), _) if id.scope < scope => Err(ApiError::Forbidden(format!(
                "the token `{}` has scope `{}`; this route needs `{}`",
                id.name,
                id.scope.as_str(),
                scope.as_str()
            ))),
            (Some(id), _) => Ok(id),
        }
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Guards a read route.
pub struct ReadAccess(pub Identity);

/// Guards a control route; the identity names the actor in the audit trail.
pub struct ControlAccess(pub Identity);

impl FromRequest for ReadAccess {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            state(req)
                .and_then(|s| s.auth.require(req, Scope::Read))
                .map(ReadAccess),
        )
    }
}

impl FromRequest for ControlAccess {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req)?;
            match state.auth.require(&req, Scope::Control) {
                Ok(id) => Ok(ControlAccess(id)),
                Err(e) => {
                    let actor = match req.headers().get(header::AUTHORIZATION) {
                        None => "(no token)".to_owned(),
                        Some(_) => state
                            .auth
                            .identify(&req)
                            .ok()
                            .flatten()
                            .map_or("(invalid token)".into(), |i| i.name),
                    };
                    let entry = AuditEntry {
                        actor,
                        action: format!("{} {}", req.method(), req.path()),
                        target: None,
                        outcome: "refused".into(),
                        detail: Some(e.to_string()),
                    };
                    state.audit(entry).await;
                    Err(e)
                }
            }
        })
    }
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("application state is missing".into()))
}
