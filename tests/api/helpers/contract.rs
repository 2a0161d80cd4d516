//! Guard (a): every answer a test receives is held to the OpenAPI document.
//! The route is found by matching the request path against the document's
//! templates (as actix matches them), the status must be documented, the
//! content type must be one documented, and a JSON body must validate
//! against the schema declared for that route, method and status.

use actix_web::dev::ResourceDef;
use serde_json::{Map, Value};
use std::{collections::HashMap, sync::OnceLock};

/// Where the compiled schemas live: the document's components, plus every
/// response schema at `/responses/<n>`, so `#/components/...` references
/// resolve and no pointer needs escaping.
const RESOURCE: &str = "urn:hostwatch:openapi";

struct Contract {
    doc: Value,
    /// Each path template, with how many of its segments are parameters.
    routes: Vec<(ResourceDef, String, usize)>,
    schemas: boon::Schemas,
    /// A response schema, serialized, to its compiled index.
    compiled: HashMap<String, boon::SchemaIndex>,
}

fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        let doc = serde_json::to_value(hostwatch::api::openapi()).expect("the document serializes");
        let routes = doc["paths"]
            .as_object()
            .expect("the document has paths")
            .keys()
            .map(|t| {
                (
                    ResourceDef::new(t.as_str()),
                    t.clone(),
                    t.matches('{').count(),
                )
            })
            .collect();
        let mut bodies: Vec<Value> = Vec::new();
        for item in doc["paths"].as_object().into_iter().flat_map(Map::values) {
            for op in item.as_object().into_iter().flat_map(Map::values) {
                for response in op["responses"]
                    .as_object()
                    .into_iter()
                    .flat_map(Map::values)
                {
                    let response = resolve(&doc, response);
                    for (media, content) in response["content"].as_object().into_iter().flatten() {
                        if is_json(media)
                            && let Some(schema) = content.get("schema")
                            && !bodies.contains(schema)
                        {
                            bodies.push(schema.clone());
                        }
                    }
                }
            }
        }
        let resource = serde_json::json!({
            "components": doc["components"],
            "responses": bodies,
        });
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V2020_12);
        compiler.enable_format_assertions();
        compiler
            .add_resource(RESOURCE, resource)
            .expect("the document loads as a schema resource");
        let mut schemas = boon::Schemas::new();
        let compiled = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let idx = compiler
                    .compile(&format!("{RESOURCE}#/responses/{i}"), &mut schemas)
                    .unwrap_or_else(|e| panic!("response schema {body} does not compile: {e:#}"));
                (body.to_string(), idx)
            })
            .collect();
        Contract {
            doc,
            routes,
            schemas,
            compiled,
        }
    })
}

/// A response object, or the shared one its `$ref` names.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{r} does not resolve")),
        None => v,
    }
}

/// `type/subtype` without parameters, lower case.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_json(media: &str) -> bool {
    let m = essence(media);
    m == "application/json" || m.ends_with("+json")
}

/// Panics unless the answer is one the document declares for this request.
/// Requests to paths or methods the document does not describe (the Swagger
/// UI, the document itself, a route that does not exist) are not checked.
pub fn check(method: &str, target: &str, status: u16, content_type: &str, body: &[u8]) {
    let c = contract();
    let path = target.split(['?', '#']).next().unwrap_or(target);
    let Some(template) = c
        .routes
        .iter()
        .filter(|(def, _, _)| def.is_match(path))
        // A fixed segment wins over a parameter, as actix registers them.
        .min_by_key(|(_, _, params)| *params)
        .map(|(_, t, _)| t.as_str())
    else {
        return;
    };
    let Some(op) = c.doc["paths"][template].get(method.to_ascii_lowercase()) else {
        return;
    };
    let route = format!("{method} {target} ({template})");
    let text = String::from_utf8_lossy(body);
    let documented = &op["responses"];
    let Some(response) = documented
        .get(status.to_string())
        .or_else(|| documented.get("default"))
    else {
        let known: Vec<&String> = documented
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        panic!("{route}: status {status} is not documented (documented: {known:?}); body: {text}");
    };
    let content = resolve(&c.doc, response)["content"].as_object();
    let Some(content) = content.filter(|m| !m.is_empty()) else {
        assert!(
            body.is_empty(),
            "{route}: {status} is documented without a body, got: {text}"
        );
        return;
    };
    let media = essence(content_type);
    let Some((_, declared)) = content.iter().find(|(m, _)| essence(m) == media) else {
        let known: Vec<&String> = content.keys().collect();
        panic!("{route}: {status} answered content type `{content_type}`, documented: {known:?}");
    };
    if !is_json(&media) {
        return;
    }
    let Some(schema) = declared.get("schema") else {
        return;
    };
    let instance: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!("{route}: {status} says `{content_type}` but is not JSON ({e}): {text}")
    });
    let idx = c.compiled[&schema.to_string()];
    if let Err(e) = c.schemas.validate(&instance, idx) {
        panic!(
            "{route}: the {status} body does not match its documented schema {schema}:\n{e}\nbody: {text}"
        );
    }
}
