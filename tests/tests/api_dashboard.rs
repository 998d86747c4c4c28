//! The dashboard page and its script are served by the API without a token, under a policy that
//! lets the page run only its own script and call only its own origin. What the page shows is
//! tested in a real browser (clients/typescript/test/dashboard.test.mjs).

mod api_kit;

use api_kit::ApiStack;
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use tower::ServiceExt;

async fn get(api: &ApiStack, path: &str) -> (StatusCode, http::HeaderMap, String) {
    let request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let response = api.router.clone().oneshot(request).await.expect("the router answers");
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.expect("a body");
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes.to_vec()).expect("text"),
    )
}

#[tokio::test]
async fn the_page_and_its_script_are_served_without_a_token() {
    let api = ApiStack::start().await;
    let (status, headers, page) = get(&api, "/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        policy.contains("script-src 'self'") && policy.contains("connect-src 'self'"),
        "{policy}"
    );
    assert!(!policy.contains("unsafe-eval") && !policy.contains("script-src 'self' 'unsafe-inline'"));
    assert!(page.contains(r#"src="/dashboard/dashboard.js""#));
    assert!(
        !page.contains("<script>"),
        "no inline script: the policy would block it"
    );

    let (status, headers, script) = get(&api, "/dashboard/dashboard.js").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert!(script.contains("/v1/projects"), "the bundle calls the public API");
    assert!(
        script.len() < 64 * 1024,
        "the bundle stays small: {} bytes",
        script.len()
    );
}
