//! The built-in dashboard (SPEC §9): one page and two assets, compiled into
//! the binary from `web/`, so it works offline with no build step. Each
//! asset is gzipped once, at first use, and served with a strong ETag, so a
//! reload costs three 304s. The page needs no token to load: it holds no
//! data, and asks for a token itself when a route wants one.

use super::error::responses::*;
use actix_web::{
    HttpRequest, HttpResponse, get,
    http::{
        StatusCode,
        header::{self, HeaderValue},
    },
    web,
};
use sha2::{Digest, Sha256};
use std::{io::Write, sync::LazyLock};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(index).service(asset);
}

/// uPlot first, then the page's scripts in the order they depend on each
/// other: classic scripts sharing one namespace, so one request loads all.
const JS: &str = concat!(
    include_str!("../../web/vendor/uplot/uPlot.iife.min.js"),
    "\n",
    include_str!("../../web/js/util.js"),
    "\n",
    include_str!("../../web/js/api.js"),
    "\n",
    include_str!("../../web/js/charts.js"),
    "\n",
    include_str!("../../web/js/panels.js"),
    "\n",
    include_str!("../../web/js/app.js"),
);

const CSS: &str = concat!(
    include_str!("../../web/vendor/uplot/uPlot.min.css"),
    "\n",
    include_str!("../../web/dashboard.css"),
);

const HTML: &str = include_str!("../../web/index.html");

/// Scripts and styles only from the agent itself, nothing inline, no eval,
/// no framing: text that reaches the page can never run as code.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

struct Asset {
    content_type: &'static str,
    plain: &'static [u8],
    gzipped: Vec<u8>,
    /// Quoted, as the header carries it; the gzipped form adds `-gz`, since
    /// the two are different bytes.
    etag: String,
    etag_gz: String,
}

impl Asset {
    fn new(content_type: &'static str, text: &'static str) -> Self {
        let plain = text.as_bytes();
        let digest = Sha256::digest(plain);
        let tag = hex::encode(&digest[..12]);
        Self {
            content_type,
            plain,
            gzipped: gzip(plain),
            etag: format!("\"{tag}\""),
            etag_gz: format!("\"{tag}-gz\""),
        }
    }
}

fn gzip(plain: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(plain);
    enc.finish().unwrap_or_default()
}

static PAGE: LazyLock<Asset> = LazyLock::new(|| Asset::new("text/html; charset=utf-8", HTML));
static SCRIPT: LazyLock<Asset> = LazyLock::new(|| Asset::new("text/javascript; charset=utf-8", JS));
static STYLE: LazyLock<Asset> = LazyLock::new(|| Asset::new("text/css; charset=utf-8", CSS));

/// The dashboard: the host now, its history in charts, and the actions a
/// control token allows.
#[utoipa::path(
    tag = "dashboard",
    responses(
        (status = 200, description = "The dashboard page", content_type = "text/html", body = String),
        (status = 304, description = "Not modified since the ETag given in If-None-Match"),
    ),
    security(())
)]
#[get("/")]
async fn index(req: HttpRequest) -> HttpResponse {
    serve(&req, &PAGE)
}

/// The dashboard's script (uPlot and the page's code) and style sheet.
#[utoipa::path(
    tag = "dashboard",
    params(("file" = String, Path, description = "`dashboard.js` or `dashboard.css`")),
    responses(
        (status = 200, description = "The asset", content(
            (String = "text/javascript"),
            (String = "text/css"),
        )),
        (status = 304, description = "Not modified since the ETag given in If-None-Match"),
        (status = 404, response = NotFound),
    ),
    security(())
)]
#[get("/ui/{file}")]
async fn asset(req: HttpRequest, file: web::Path<String>) -> HttpResponse {
    match file.as_str() {
        "dashboard.js" => serve(&req, &SCRIPT),
        "dashboard.css" => serve(&req, &STYLE),
        other => super::error::problem_response(
            StatusCode::NOT_FOUND,
            &format!("no dashboard file '{other}'; there are dashboard.js and dashboard.css"),
        ),
    }
}

fn serve(req: &HttpRequest, a: &'static Asset) -> HttpResponse {
    let gz = accepts_gzip(req);
    let etag = if gz { &a.etag_gz } else { &a.etag };
    let mut res = if not_modified(req, a) {
        HttpResponse::NotModified().finish()
    } else if gz {
        HttpResponse::Ok()
            .content_type(a.content_type)
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(a.gzipped.as_slice())
    } else {
        HttpResponse::Ok()
            .content_type(a.content_type)
            .body(a.plain)
    };
    let h = res.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // Always asked again, so a new binary's page is never stale; the
        // ETag makes asking cheap.
        (header::CACHE_CONTROL, "no-cache"),
        (header::VARY, "Accept-Encoding"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    res
}

/// Whether `Accept-Encoding` takes gzip (RFC 9110 §12.5.3): `gzip` or
/// `x-gzip` with a q-value above 0, or else `*` with one.
fn accepts_gzip(req: &HttpRequest) -> bool {
    let Some(v) = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let (mut named, mut any) = (None, None);
    for item in v.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match coding.as_str() {
            "gzip" | "x-gzip" => named = Some(named.map_or(q, |n: f32| n.max(q))),
            "*" => any = Some(q),
            _ => {}
        }
    }
    named.or(any).is_some_and(|q| q > 0.0)
}

/// `If-None-Match` names this asset in either encoding (weak comparison,
/// RFC 9110 §13.1.2), or is `*`.
fn not_modified(req: &HttpRequest, a: &Asset) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == a.etag || t == a.etag_gz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn enc(v: &str) -> bool {
        accepts_gzip(
            &TestRequest::default()
                .insert_header((header::ACCEPT_ENCODING, v))
                .to_http_request(),
        )
    }

    #[test]
    fn gzip_is_taken_unless_its_q_is_zero() {
        assert!(enc("gzip, deflate, br"));
        assert!(enc("br;q=1.0, gzip;q=0.5"));
        assert!(enc("*"));
        assert!(!enc("gzip;q=0"));
        assert!(!enc("gzip;q=0, *"));
        assert!(enc("deflate;q=0.5, *;q=0.1"));
        assert!(!enc("br, identity"));
        assert!(!enc(""));
    }

    #[test]
    fn an_etag_matches_in_either_encoding_and_weakly() {
        let a = &*STYLE;
        for inm in [a.etag.clone(), format!("W/{}", a.etag_gz), "*".into()] {
            let req = TestRequest::default()
                .insert_header((header::IF_NONE_MATCH, format!("\"x\", {inm}")))
                .to_http_request();
            assert!(not_modified(&req, a), "{inm}");
        }
        let req = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "\"other\""))
            .to_http_request();
        assert!(!not_modified(&req, a));
    }

    #[test]
    fn the_gzipped_assets_unpack_to_the_plain_ones() {
        use std::io::Read;
        for a in [&*PAGE, &*SCRIPT, &*STYLE] {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(a.gzipped.as_slice())
                .read_to_end(&mut out)
                .expect("gzip");
            assert_eq!(out, a.plain);
            assert!(a.gzipped.len() < a.plain.len());
        }
    }
}
