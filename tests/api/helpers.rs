//! `spawn_app`: a real server on port 0 with its own database directory.
//! Every answer received through `TestApp::request` is checked against the
//! OpenAPI document (`contract`).

pub mod contract;
pub mod mounts;
pub mod prometheus;
pub mod smtp;
pub mod webhook;

use awc::Client;
use hostwatch::{
    config::{Scope, Settings, TokenSettings},
    startup::{Application, StopHandle},
    tokens,
};
use serde_json::Value;
use std::{path::PathBuf, time::Duration};

pub const READ_TOKEN: &str = "hw_test_read_token";
pub const CONTROL_TOKEN: &str = "hw_test_control_token";

pub struct TestApp {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub client: Client,
    stop: StopHandle,
    task: tokio::task::JoinHandle<()>,
}

pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub headers: awc::http::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    /// The whole answer (up to 64 MiB), as it came.
    pub async fn read<S>(res: &mut awc::ClientResponse<S>) -> Self
    where
        S: futures_core::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>
            + Unpin,
    {
        let body = res.body().limit(64 << 20).await.unwrap().to_vec();
        Response {
            status: res.status().as_u16(),
            content_type: res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
            headers: res.headers().clone(),
            body,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a problem+json answer with this status and returns its detail.
    pub fn problem(&self, status: u16) -> String {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(
            self.content_type,
            "application/problem+json",
            "body: {}",
            self.text()
        );
        let p = self.json();
        assert_eq!(p["status"], status);
        assert!(p["type"].as_str().is_some() && p["title"].as_str().is_some());
        let detail = p["detail"].as_str().expect("detail").to_owned();
        assert!(!detail.is_empty());
        detail
    }
}

/// Settings for a test: loopback port 0, a fresh database, the sampler off
/// unless the test starts it, a read and a control token.
pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::default();
    s.server.listen = "127.0.0.1:0".parse().unwrap();
    s.server.workers = 2;
    s.storage.path = dir.join("hostwatch.db");
    s.sampler.autostart = false;
    s.sampler.interval = Duration::from_millis(200);
    // Services are watched only where a test asks for them.
    s.services = Vec::new();
    s.auth.tokens = vec![
        TokenSettings {
            name: "reader".into(),
            scope: Scope::Read,
            sha256: tokens::sha256(READ_TOKEN),
        },
        TokenSettings {
            name: "operator".into(),
            scope: Scope::Control,
            sha256: tokens::sha256(CONTROL_TOKEN),
        },
    ];
    s
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(change: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut s = test_settings(dir.path());
    change(&mut s);
    spawn_in(dir, s).await
}

/// Starts an app over an existing directory (to restart on the same database).
pub async fn spawn_in(dir: tempfile::TempDir, settings: Settings) -> TestApp {
    let app = Application::build(settings).await.expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let stop = app.stop_handle();
    let task = tokio::spawn(async move {
        app.run_until_stopped().await.expect("app runs");
    });
    let client = Client::builder()
        .timeout(Duration::from_secs(20))
        .disable_redirects()
        .finish();
    TestApp {
        base,
        dir,
        client,
        stop,
        task,
    }
}

impl TestApp {
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("hostwatch.db")
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> Response {
        let verb = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(verb, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.insert_header(("Authorization", format!("Bearer {t}")));
        }
        let mut res = match body {
            Some(b) => req
                .insert_header(("Content-Type", "application/json"))
                .send_body(b.to_vec())
                .await
                .unwrap(),
            None => req.send().await.unwrap(),
        };
        let response = Response::read(&mut res).await;
        contract::check(
            method,
            path,
            response.status,
            &response.content_type,
            &response.body,
        );
        response
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request("GET", path, None, None).await
    }

    pub async fn control(&self, path: &str, body: Option<&str>) -> Response {
        self.request("POST", path, Some(CONTROL_TOKEN), body.map(str::as_bytes))
            .await
    }

    /// Polls `f` until it holds or `limit` passes.
    pub async fn wait_until<F, Fut>(&self, limit: Duration, mut f: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let end = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < end {
            if f().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Stops the server and waits until it has let go of the database.
    pub async fn stop(self) -> tempfile::TempDir {
        self.stop.stop().await;
        self.task.await.unwrap();
        self.dir
    }
}

/// Child processes killed and reaped when the test ends, however it ends,
/// so a failed assertion leaves no agent behind.
pub struct Reaped(pub Vec<std::process::Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
