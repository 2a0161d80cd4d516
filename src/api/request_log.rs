//! One log line per request: method, the route pattern it matched (never
//! the raw path, which is the caller's text and may carry anything), status,
//! duration and who asked, by the token's name (never the token).

use super::{AppState, auth::CallerName};
use actix_web::{
    Error, HttpMessage, HttpRequest,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};
use std::time::Instant;

/// What the line says of a request that matched no route.
const NO_ROUTE: &str = "(no route)";

/// What it says where the request is gone with an error.
const UNKNOWN: &str = "(unknown)";

/// The middleware: wrap the app in `middleware::from_fn(request_log::log)`.
/// The duration runs until the response's head is ready; a streamed body
/// (an export) goes on after it.
pub async fn log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    // Nothing of the request may be kept across the call: routing needs it
    // unshared.
    let method = req.method().clone();
    let result = next.call(req).await;
    let (route, status, caller) = match &result {
        Ok(res) => {
            let req = res.request();
            let route = req.match_pattern().unwrap_or_else(|| NO_ROUTE.to_owned());
            (route, res.status(), caller(req))
        }
        // Only a middleware errs here; the request went with the error.
        Err(e) => (
            UNKNOWN.to_owned(),
            e.as_response_error().status_code(),
            UNKNOWN.to_owned(),
        ),
    };
    Line {
        method: method.as_str(),
        route: &route,
        status: status.as_u16(),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        caller: &caller,
    }
    .emit();
    result
}

/// The extractors leave the name for routes that check a token; for the
/// others (health, documents, no route) it is worked out here.
fn caller(req: &HttpRequest) -> String {
    let known = req.extensions().get::<CallerName>().cloned();
    known
        .or_else(|| {
            req.app_data::<web::Data<AppState>>()
                .map(|s| s.auth.caller_name(req))
        })
        .map_or_else(|| "anonymous".to_owned(), |c| c.0)
}

/// The fields of one line.
#[derive(Debug)]
struct Line<'a> {
    method: &'a str,
    route: &'a str,
    status: u16,
    duration_ms: f64,
    caller: &'a str,
}

impl Line<'_> {
    fn emit(&self) {
        // Quoted: a configured name may hold spaces, and `(invalid token)` does.
        tracing::info!(
            method = %self.method,
            route = %self.route,
            status = self.status,
            duration_ms = format_args!("{:.2}", self.duration_ms),
            caller = ?self.caller,
            "request"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{App, HttpResponse, middleware::from_fn, test};
    use std::sync::{Arc, Mutex};

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    async fn lines_for(uri: &str) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                .route(
                    "/things/{id}",
                    web::get().to(|req: HttpRequest| async move {
                        req.extensions_mut().insert(CallerName("ops team".into()));
                        HttpResponse::Accepted().finish()
                    }),
                )
                .wrap(from_fn(log)),
        )
        .await;
        test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
        out.text()
    }

    #[actix_web::test]
    async fn a_line_names_the_pattern_status_and_caller_never_the_path() {
        let text = lines_for("/things/secret-42?q=x").await;
        assert!(text.contains(" request "), "{text}");
        assert!(text.contains("method=GET"), "{text}");
        assert!(text.contains("route=/things/{id}"), "{text}");
        assert!(text.contains("status=202"), "{text}");
        assert!(text.contains(r#"caller="ops team""#), "{text}");
        assert!(text.contains("duration_ms="), "{text}");
        assert!(!text.contains("secret-42"), "{text}");
    }

    #[actix_web::test]
    async fn a_request_matching_no_route_says_so() {
        let text = lines_for("/nowhere/else").await;
        assert!(text.contains("route=(no route)"), "{text}");
        assert!(text.contains("status=404"), "{text}");
        assert!(text.contains(r#"caller="anonymous""#), "{text}");
        assert!(!text.contains("nowhere"), "{text}");
    }
}
