//! The OpenAPI document describes every route the app serves, with the
//! bearer scheme, and the Swagger UI serves it.

use crate::helpers::{CONTROL_TOKEN, contract, spawn_app};
use serde_json::Value;

/// The routes of SPEC §4 built so far, as (method, path).
const ROUTES: [(&str, &str); 42] = [
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/api/v1/sampler"),
    ("post", "/api/v1/sampler/start"),
    ("post", "/api/v1/sampler/stop"),
    ("post", "/api/v1/checks"),
    ("get", "/api/v1/checks"),
    ("get", "/api/v1/checks/latest"),
    ("get", "/api/v1/checks/{id}"),
    ("get", "/api/v1/checks/{metric}/history"),
    ("get", "/api/v1/checks/{metric}/series"),
    ("get", "/api/v1/checks/summary"),
    ("get", "/api/v1/checks/export"),
    ("get", "/api/v1/system"),
    ("get", "/api/v1/self"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/services"),
    ("get", "/api/v1/services/{name}"),
    ("get", "/api/v1/services/{name}/history"),
    ("post", "/api/v1/services/{name}/start"),
    ("post", "/api/v1/services/{name}/stop"),
    ("post", "/api/v1/services/{name}/restart"),
    ("get", "/api/v1/processes"),
    ("get", "/api/v1/processes/{pid}"),
    ("post", "/api/v1/processes"),
    ("delete", "/api/v1/processes/{pid}"),
    ("patch", "/api/v1/processes/{pid}"),
    ("get", "/api/v1/jobs"),
    ("get", "/api/v1/jobs/{job_id}"),
    ("get", "/api/v1/users"),
    ("get", "/api/v1/users/{username}/processes"),
    ("get", "/api/v1/directories"),
    ("get", "/api/v1/rules"),
    ("get", "/api/v1/alerts"),
    ("get", "/api/v1/alerts/{id}"),
    ("get", "/api/v1/probes"),
    ("get", "/api/v1/probes/{name}/results"),
    ("get", "/api/v1/notifications"),
    ("post", "/api/v1/notifiers/{name}/test"),
    ("post", "/api/v1/silences"),
    ("get", "/api/v1/silences"),
    ("delete", "/api/v1/silences/{id}"),
];

#[actix_web::test]
async fn every_route_is_documented_with_its_statuses_and_security() {
    let app = spawn_app().await;
    let doc = app.get("/api-docs/openapi.json").await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (method, path) in ROUTES {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not in the document");
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|k| k.starts_with('2')),
            "{method} {path}: no success status"
        );
        if path.starts_with("/api/v1") {
            assert!(
                responses.contains_key("401"),
                "{method} {path}: 401 undocumented"
            );
            assert!(op["security"].is_array(), "{method} {path}: no security");
        }
        if method != "get" {
            assert!(
                responses.contains_key("403"),
                "{method} {path}: 403 undocumented"
            );
        }
    }
    app.stop().await;
}

/// Every `$ref` in `v`, anywhere in the tree.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r);
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[actix_web::test]
async fn every_reference_in_the_document_resolves() {
    let app = spawn_app().await;
    let doc = app.get("/api-docs/openapi.json").await.json();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 50, "only {} references", all.len());
    for r in all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external reference {r}"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    app.stop().await;
}

#[actix_web::test]
async fn every_documented_route_is_served() {
    let app = spawn_app().await;
    let doc = app.get("/api-docs/openapi.json").await.json();
    let paths = doc["paths"].as_object().unwrap();
    let operations: usize = paths
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert!(operations >= ROUTES.len());
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path
                .replace("{id}", "1")
                .replace("{metric}", "cpu")
                .replace("{name}", "nosuch")
                .replace("{pid}", "2147483000")
                .replace("{job_id}", "1")
                .replace("{username}", "root");
            let r = app
                .request(&method.to_uppercase(), &concrete, Some(CONTROL_TOKEN), None)
                .await;
            assert!(
                ![405, 500].contains(&r.status),
                "{method} {path}: {} {}",
                r.status,
                r.text()
            );
            assert!(
                r.status != 404 || r.content_type == "application/problem+json",
                "{method} {path} is not routed"
            );
            let documented = item[method]["responses"].as_object().unwrap();
            assert!(
                documented.contains_key(&r.status.to_string()),
                "{method} {path} answered undocumented {}",
                r.status
            );
        }
    }
    app.stop().await;
}

#[actix_web::test]
async fn swagger_ui_is_served_and_the_bare_path_redirects() {
    let app = spawn_app().await;
    let r = app.get("/swagger-ui/").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("swagger"), "{}", r.text());
    let r = app.get("/swagger-ui").await;
    assert_eq!(r.status, 308);
    assert_eq!(r.headers.get("location").unwrap(), "/swagger-ui/");
    let init = app.get("/swagger-ui/swagger-initializer.js").await;
    assert!(init.text().contains("/api-docs/openapi.json"));
    let _: Value = app.get("/api-docs/openapi.json").await.json();
    app.stop().await;
}

/// The schema a `{"$ref"}` or `{"oneOf": [null, {"$ref"}]}` property names.
fn referenced<'a>(doc: &'a Value, property: &'a Value) -> &'a Value {
    let r = property["$ref"]
        .as_str()
        .or_else(|| {
            property["oneOf"]
                .as_array()?
                .iter()
                .find_map(|v| v["$ref"].as_str())
        })
        .unwrap_or_else(|| panic!("no reference in {property}"));
    doc.pointer(r.trim_start_matches('#')).unwrap()
}

#[actix_web::test]
async fn process_and_host_cpu_times_are_told_apart() {
    let app = spawn_app().await;
    let doc = app.get("/api-docs/openapi.json").await.json();
    let schemas = &doc["components"]["schemas"];
    let process = referenced(&doc, &schemas["ProcessInfo"]["properties"]["cpu_times"]);
    let host = referenced(&doc, &schemas["SystemSnapshot"]["properties"]["cpu_times"]);
    assert!(
        process["properties"]["children_user"].is_object(),
        "{process}"
    );
    assert!(host["properties"]["idle"].is_object(), "{host}");
    assert_ne!(process, host);
    app.stop().await;
}

// The guard every test's answers pass through must be able to fail.

#[test]
#[should_panic(expected = "status 418 is not documented")]
fn the_contract_guard_refuses_an_undocumented_status() {
    contract::check("GET", "/api/v1/sampler", 418, "application/json", b"{}");
}

#[test]
#[should_panic(expected = "does not match its documented schema")]
fn the_contract_guard_refuses_host_cpu_times_in_a_process() {
    let host_shaped =
        br#"{"pid": 7, "cpu_times": {"user": 1.0, "nice": 0.0, "system": 1.0, "idle": 9.0}}"#;
    contract::check(
        "GET",
        "/api/v1/processes/7",
        200,
        "application/json",
        host_shaped,
    );
}

#[test]
#[should_panic(expected = "documented: [\"application/x-ndjson\", \"text/csv\"]")]
fn the_contract_guard_refuses_an_undocumented_content_type() {
    contract::check(
        "GET",
        "/api/v1/checks/export?format=csv",
        200,
        "text/html",
        b"<p>",
    );
}

#[test]
fn the_contract_guard_takes_a_documented_answer_and_skips_what_is_not_documented() {
    let problem = br#"{"type": "urn:hostwatch:problem:not-found", "title": "Not Found", "status": 404, "detail": "no check has id 9"}"#;
    contract::check(
        "GET",
        "/api/v1/checks/9",
        404,
        "application/problem+json",
        problem,
    );
    let process = br#"{"pid": 7, "cpu_times": {"user": 1.0, "system": 1.0, "children_user": 0.0, "children_system": 0.0}}"#;
    contract::check(
        "GET",
        "/api/v1/processes/7?fields=all",
        200,
        "application/json",
        process,
    );
    contract::check(
        "GET",
        "/api/v1/checks/export?format=csv",
        200,
        "text/csv; charset=utf-8",
        b"id\n",
    );
    contract::check("GET", "/swagger-ui/", 200, "text/html", b"<html>");
}

#[actix_web::test]
async fn an_integer_in_a_body_may_be_written_with_a_zero_fraction() {
    // JSON Schema reads 5.0 as the integer 5, and so must the agent.
    let app = spawn_app().await;
    let mut sleeper = std::process::Command::new("sleep")
        .arg("300")
        .spawn()
        .unwrap();
    let path = format!("/api/v1/processes/{}", sleeper.id());
    let r = app
        .request(
            "PATCH",
            &path,
            Some(CONTROL_TOKEN),
            Some(br#"{"nice": 5.0}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["nice"], 5);
    let d = app
        .request(
            "PATCH",
            &path,
            Some(CONTROL_TOKEN),
            Some(br#"{"nice": 5.5}"#),
        )
        .await
        .problem(400);
    assert!(d.contains("whole number"), "{d}");
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    app.stop().await;
}
