//! Security review M2: each team's requests are limited (a token bucket per team in each API
//! instance, on the stack's clock): past it a team gets 429 `rate_limited` with `Retry-After` and
//! the JSON error body, and other teams are not affected.

mod api_kit;

use std::time::Duration;

use api_kit::{ApiStack, assert_error, request, send};
use http::{Method, StatusCode, header};

#[tokio::test]
async fn a_team_past_its_request_rate_gets_429_with_retry_after_and_others_do_not() {
    let api = ApiStack::start_with(|var| match var {
        "SANDMAN_TEAM_REQUESTS_PER_SECOND" => Some("2".into()),
        "SANDMAN_TEAM_REQUEST_BURST" => Some("5".into()),
        _ => None,
    })
    .await;
    for n in 0..5 {
        assert_eq!(
            api.get("/v1/projects").await.status,
            StatusCode::OK,
            "request {n} is in the burst"
        );
    }
    let refused = api.get("/v1/projects").await;
    assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(refused.headers[header::RETRY_AFTER], "1", "{refused:?}");
    assert!(refused.message().contains("2 requests a second"), "{refused:?}");
    // A refused request costs nothing more: still refused, and every route counts.
    assert_error(
        &api.post("/v1/projects/app/sandbox").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );

    let other = api.token_for("team-b");
    let theirs = send(&api.router, request(Method::GET, "/v1/projects", Some(&other), None)).await;
    assert_eq!(
        theirs.status,
        StatusCode::OK,
        "another team's bucket is its own: {theirs:?}"
    );

    api.advance(Duration::from_millis(500)).await;
    assert_eq!(
        api.get("/v1/projects").await.status,
        StatusCode::OK,
        "one token back after 0.5 s"
    );
    assert_eq!(api.get("/v1/projects").await.status, StatusCode::TOO_MANY_REQUESTS);
    api.advance(Duration::from_secs(60)).await;
    for _ in 0..5 {
        assert_eq!(
            api.get("/v1/projects").await.status,
            StatusCode::OK,
            "a full burst again"
        );
    }
    // Unauthenticated routes are not counted against anyone.
    for _ in 0..10 {
        let open = send(&api.router, request(Method::GET, "/openapi.json", None, None)).await;
        assert_eq!(open.status, StatusCode::OK);
    }
}
