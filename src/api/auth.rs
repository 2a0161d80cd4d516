//! Who is asking: bearer tokens checked against the configured SHA-256
//! hashes, and the extractors that guard routes by scope. Refused control
//! requests reach the audit trail through `audit_trail`.

use super::{
    AppState,
    audit_rate::{self, Budget},
    error::ApiError,
};
use crate::{config::Scope, tokens};
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, http::header, web};
use std::sync::Arc;

/// Who the request log names as the caller: the token's name, `anonymous`
/// or `(invalid token)`; never the token.
#[derive(Debug, Clone)]
pub struct CallerName(pub String);

impl CallerName {
    fn of(who: &Result<Option<Identity>, ApiError>) -> Self {
        Self(match who {
            Ok(Some(id)) => id.name.clone(),
            Ok(None) => ANONYMOUS.into(),
            Err(_) => "(invalid token)".into(),
        })
    }
}

/// The configured tokens, whether reads need one, and how fast callers
/// may add rows to the audit trail.
pub struct Auth {
    tokens: Vec<crate::config::TokenSettings>,
    public_read: bool,
    /// Refusals of callers without a control token: one bucket per named
    /// token, and one shared by every caller without a valid token, so
    /// strangers cannot silence a named token's refusals.
    refusals: Arc<Budget>,
    /// Rows of control token holders, one bucket per token.
    control: Arc<Budget>,
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
            refusals: Arc::new(Budget::new(audit_rate::STRANGERS)),
            control: Arc::new(Budget::new(audit_rate::CONTROL)),
        }
    }

    /// Where a refusal of a caller without a control token is counted:
    /// anyone who reaches the port can be refused, so this bounds how fast
    /// the audit table grows by their hand. `token` is the refused caller's
    /// token name, `None` without a valid one.
    pub fn refusal_budget(&self, token: Option<&str>) -> (&Arc<Budget>, String) {
        (&self.refusals, self.key(token))
    }

    /// Where a row of the control token `name` is counted: its actions and
    /// its refused requests alike.
    pub fn control_budget(&self, name: &str) -> (&Arc<Budget>, String) {
        (&self.control, self.key(Some(name)))
    }

    /// Only configured names become keys, so the budgets stay small.
    fn key(&self, token: Option<&str>) -> String {
        token
            .filter(|t| self.tokens.iter().any(|c| c.name == *t))
            .unwrap_or("")
            .to_owned()
    }

    /// The identity behind the request's token, `None` when it sent none.
    pub(crate) fn identify(&self, req: &HttpRequest) -> Result<Option<Identity>, ApiError> {
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

    /// Whether the request carries a valid token: such callers have shares
    /// of the agent's bounded resources that anonymous ones cannot take.
    pub(crate) fn holds_token(&self, req: &HttpRequest) -> bool {
        matches!(self.identify(req), Ok(Some(_)))
    }

    /// The caller's name for the log, for a route that did not ask.
    pub(crate) fn caller_name(&self, req: &HttpRequest) -> CallerName {
        CallerName::of(&self.identify(req))
    }

    /// The caller if it may use a route of `scope`, else the refusal.
    pub(crate) fn require(&self, req: &HttpRequest, scope: Scope) -> Result<Identity, ApiError> {
        self.require_with(req, scope, self.public_read)
    }

    fn require_with(
        &self,
        req: &HttpRequest,
        scope: Scope,
        public: bool,
    ) -> Result<Identity, ApiError> {
        let who = self.identify(req);
        // The request log reads it, so the token is hashed once per request.
        req.extensions_mut().insert(CallerName::of(&who));
        match (who?, scope) {
            (None, Scope::Read) if public => Ok(Identity {
                name: ANONYMOUS.into(),
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

impl Identity {
    /// A caller that sent no token: it sees what an unprivileged local user
    /// sees of other users' processes (SPEC §5).
    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS
    }
}

pub(super) const ANONYMOUS: &str = "anonymous";

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Guards a read route.
pub struct ReadAccess(pub Identity);

/// Guards a read route whose data holds what others asked for (jobs and
/// their output, notifications): a read token even when reads are public.
pub struct TokenAccess(pub Identity);

/// Guards a control route; the identity names the actor in the audit trail.
pub struct ControlAccess(pub Identity);

fn extract<T>(
    req: &HttpRequest,
    check: impl FnOnce(&Auth, &HttpRequest) -> Result<Identity, ApiError>,
    wrap: impl FnOnce(Identity) -> T,
) -> std::future::Ready<Result<T, ApiError>> {
    std::future::ready(state(req).and_then(|s| check(&s.auth, req)).map(wrap))
}

impl FromRequest for ReadAccess {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        extract(req, |a, r| a.require(r, Scope::Read), ReadAccess)
    }
}

impl FromRequest for TokenAccess {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        extract(
            req,
            |a, r| a.require_with(r, Scope::Read, false),
            TokenAccess,
        )
    }
}

impl FromRequest for ControlAccess {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        extract(req, |a, r| a.require(r, Scope::Control), ControlAccess)
    }
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("application state is missing".into()))
}
