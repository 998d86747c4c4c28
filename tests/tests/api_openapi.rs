//! The served OpenAPI document is valid OpenAPI 3.1 and lists exactly the routes; and a real API
//! Gateway HTTP API (v2) event goes through lambda_http into the same router.

mod api_kit;

use std::collections::BTreeSet;

use api_kit::{ApiStack, request, send};
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route() {
    let api = ApiStack::start().await;
    let reply = send(&api.router, request(Method::GET, "/openapi.json", None, None)).await;
    let text = reply.json.to_string();
    let spec = oas3::from_json(&text).expect("parses as OpenAPI 3.1");
    assert_eq!(spec.validate_version().expect("a 3.1 version").minor, 1);

    let routes: BTreeSet<String> = spec
        .operations()
        .map(|(path, method, _)| format!("{method} {path}"))
        .collect();
    let expected: BTreeSet<String> = [
        "GET /healthz",
        "GET /openapi.json",
        "GET /v1/projects",
        "PUT /v1/projects/{projectId}",
        "GET /v1/projects/{projectId}",
        "DELETE /v1/projects/{projectId}",
        "POST /v1/projects/{projectId}/sandbox",
        "GET /v1/projects/{projectId}/sandbox",
        "DELETE /v1/projects/{projectId}/sandbox",
        "POST /v1/projects/{projectId}/sandbox/activity",
        "POST /v1/projects/{projectId}/sandbox/pause",
        "POST /v1/projects/{projectId}/sandbox/resume",
        "POST /v1/projects/{projectId}/snapshots",
        "GET /v1/projects/{projectId}/snapshots",
        "PATCH /v1/projects/{projectId}/snapshots/{snapshotId}",
        "DELETE /v1/projects/{projectId}/snapshots/{snapshotId}",
        "POST /v1/projects/{projectId}/snapshots/{snapshotId}/restore",
        "GET /v1/projects/{projectId}/events",
        "GET /v1/team/e2b",
        "PUT /v1/team/e2b",
        "DELETE /v1/team/e2b",
        "POST /v1/projects/{projectId}/fork",
        "GET /v1/projects/{projectId}/usage",
        "GET /v1/usage",
        "GET /v1/budget",
        "PUT /v1/budget",
        "DELETE /v1/budget",
        "POST /v1/webhooks/endpoints",
        "GET /v1/webhooks/endpoints",
        "GET /v1/webhooks/endpoints/{endpointId}",
        "DELETE /v1/webhooks/endpoints/{endpointId}",
        "GET /v1/webhooks/endpoints/{endpointId}/deliveries",
        "GET /v1/projects/{projectId}/env",
        "PUT /v1/projects/{projectId}/env",
        "GET /v1/projects/{projectId}/secrets",
        "PUT /v1/projects/{projectId}/secrets/{name}",
        "DELETE /v1/projects/{projectId}/secrets/{name}",
        "GET /v1/team/env",
        "PUT /v1/team/env",
        "GET /v1/team/secrets",
        "PUT /v1/team/secrets/{name}",
        "DELETE /v1/team/secrets/{name}",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(routes, expected);

    let document = &reply.json;
    let mut refs = Vec::new();
    collect_refs(document, &mut refs);
    assert!(refs.len() > 10, "schemas are shared through components");
    for reference in refs {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{reference} is not local"));
        assert!(document.pointer(pointer).is_some(), "{reference} does not resolve");
    }
    for (path, method, operation) in spec.operations() {
        let responses = operation
            .responses
            .as_ref()
            .map(|r| r.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        assert!(
            responses.iter().any(|code| code.starts_with('2')),
            "{method} {path} documents a success"
        );
        for (code, response) in operation.responses.iter().flatten() {
            let response = response.resolve(&spec).expect("the response resolves");
            assert!(
                response.description.is_some_and(|d| !d.is_empty()),
                "{method} {path} {code}: OpenAPI 3.1 requires a description"
            );
        }
        if path.starts_with("/v1") {
            assert!(responses.contains(&"401".to_string()), "{method} {path} documents 401");
            assert!(operation.security.len() == 1, "{method} {path} names its security");
        }
    }
    assert!(document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer");
    validate_with_python(&text);
}

/// Also checks against the OpenAPI JSON Schema with `openapi-spec-validator`, which scripts/setup
/// installs into the project's venv (`$SANDMAN_CACHE/venv`, default `.cache/venv`).
fn validate_with_python(document: &str) {
    let cache = std::env::var_os("SANDMAN_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache"));
    let validator = cache.join("venv/bin/openapi-spec-validator");
    assert!(
        validator.exists(),
        "{} is missing: run scripts/setup, which installs openapi-spec-validator",
        validator.display()
    );
    let file = std::env::temp_dir().join(format!("sandman-openapi-{}.json", std::process::id()));
    std::fs::write(&file, document).unwrap();
    let output = std::process::Command::new(&validator)
        .arg(&file)
        .output()
        .expect("the validator runs");
    std::fs::remove_file(&file).ok();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn collect_refs(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                into.push(reference.clone());
            }
            map.values().for_each(|v| collect_refs(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, into)),
        _ => {}
    }
}

/// `sam local generate-event apigateway http-api-proxy`, committed under tests/fixtures/api/.
fn lambda_request(fixture: &str, token: &str) -> lambda_http::Request {
    let mut request = lambda_http::request::from_str(fixture).expect("an API Gateway HTTP API event");
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    request.headers_mut().insert(header::AUTHORIZATION, bearer);
    request
}

#[tokio::test]
async fn an_api_gateway_http_api_event_goes_through_the_router() {
    let api = ApiStack::start().await;
    // The fixtures address project `app-1` of whichever team the token names.
    let put = lambda_request(include_str!("../fixtures/api/http-api-put-project.json"), &api.token);
    assert_eq!((put.method(), put.uri().path()), (&Method::PUT, "/v1/projects/app-1"));
    let response = api.router.clone().oneshot(put).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap()).unwrap();
    assert_eq!(
        (&body["projectId"], &body["idleTimeoutSeconds"]),
        (&Value::from("app-1"), &Value::from(300))
    );

    let get = lambda_request(include_str!("../fixtures/api/http-api-get-sandbox.json"), &api.token);
    let response = api.router.clone().oneshot(get).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key(header::ETAG));

    let anonymous = lambda_http::request::from_str(include_str!("../fixtures/api/http-api-get-sandbox.json")).unwrap();
    assert_eq!(
        api.router.clone().oneshot(anonymous).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_same_router_serves_over_tcp_on_loopback() {
    let api = ApiStack::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(axum::serve(listener, api.router.clone()).into_future());
    let http = reqwest::Client::new();
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let put = http
        .put(format!("{base}/v1/projects/over-tcp"))
        .bearer_auth(&api.token)
        .json(&serde_json::json!({"templateId": "base"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    let open = http
        .post(format!("{base}/v1/projects/over-tcp/sandbox"))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    let body: Value = open.json().await.unwrap();
    assert_eq!(body["path"], "created");
    let anonymous = http.get(format!("{base}/v1/projects")).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let error: Value = anonymous.json().await.unwrap();
    assert_eq!(error["error"]["code"], "unauthorized");
    server.abort();
}
