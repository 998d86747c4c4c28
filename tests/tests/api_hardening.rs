//! The security review's smaller findings, through the API as a caller meets them: forged page
//! cursors, content sniffing, what the document says about admins, token lifetimes and HS256
//! secret rotation.

mod api_kit;

use api_kit::{ApiStack, assert_error, request, send};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Method, StatusCode, header};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sandman::auth::Verifier;
use sandman::secrets::Secrets;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The tag an unkeyed cursor carried: anyone could compute it for a list of their own.
fn unkeyed_tag(list: &str) -> String {
    Sha256::digest(list.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// INFO (cursor tag): a cursor the caller made up, for its own list, with a start key outside
/// its partition, is a 400 naming `cursor`, never a 500.
#[tokio::test]
async fn a_forged_cursor_answers_400_not_500() {
    let api = ApiStack::start().await;
    let team = api.stack.team();
    let key = json!({"pk": ["S", "PROJECT#other-team#x"], "sk": ["S", "PROJECT"],
        "teamKey": ["S", "other-team"], "projectKey": ["S", "x"]});
    let inner = URL_SAFE_NO_PAD.encode(key.to_string());
    let mut judged = 0;
    for (path, list) in [
        ("/v1/projects".to_owned(), format!("projects:{team}")),
        ("/v1/projects/app/events".to_owned(), format!("events:{team}/app")),
    ] {
        api.register("app").await;
        let forged = format!("{}.{inner}", unkeyed_tag(&list));
        let reply = api.get(&format!("{path}?cursor={forged}")).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(reply.json["error"]["field"], "cursor", "{reply:?}");
        judged += 1;
    }
    // A cursor the API issued still works.
    for n in 0..3 {
        api.register(&format!("p{n}")).await;
    }
    let first = api.get("/v1/projects?limit=2").await;
    let next = first.json["nextCursor"].as_str().expect("a next page").to_owned();
    let second = api.get(&format!("/v1/projects?limit=2&cursor={next}")).await;
    assert_eq!(second.status, StatusCode::OK, "{second:?}");
    assert_eq!(judged, 2);
}

/// INFO (dashboard headers): no response may be sniffed into something else.
#[tokio::test]
async fn every_answer_says_nosniff() {
    let api = ApiStack::start().await;
    let token = api.token.clone();
    let mut judged = 0;
    for (path, token) in [
        ("/dashboard", None),
        ("/dashboard/dashboard.js", None),
        ("/openapi.json", None),
        ("/v1/projects", Some(token.as_str())),
        ("/v1/projects/missing", Some(token.as_str())),
        ("/v1/projects", None),
    ] {
        let response = tower::ServiceExt::oneshot(api.router.clone(), request(Method::GET, path, token, None))
            .await
            .unwrap();
        assert_eq!(
            response
                .headers()
                .get(header::X_CONTENT_TYPE_OPTIONS)
                .map(|v| v.as_bytes()),
            Some(&b"nosniff"[..]),
            "{path}"
        );
        judged += 1;
    }
    assert_eq!(judged, 6);
}

/// INFO (doc drift): the document names the admin claim and role as the code reads them.
#[tokio::test]
async fn the_document_says_how_admins_are_recognised() {
    let api = ApiStack::start().await;
    let document = send(&api.router, request(Method::GET, "/openapi.json", None, None))
        .await
        .json;
    let text = document.to_string();
    assert!(!text.contains("default `role`"), "the claim is `roles` by default");
    let scheme = document["components"]["securitySchemes"]["bearer"]["description"]
        .as_str()
        .unwrap();
    let put = &document["paths"]["/v1/budget"]["put"];
    let budget = format!(
        "{} {}",
        put["summary"].as_str().unwrap_or_default(),
        put["description"].as_str().unwrap_or_default()
    );
    for said in [scheme, budget.as_str()] {
        assert!(
            said.contains("JWT_ROLE_CLAIM") && said.contains("JWT_ADMIN_ROLE"),
            "{said}"
        );
        assert!(said.contains("`roles`"), "{said}");
    }
}

fn hs256(claims: Value, secret: &str) -> String {
    sandman::crypto::install();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// INFO (token lifetime): a token whose `exp` is further from its `iat` than the deployment
/// allows (`JWT_MAX_LIFETIME_SECS`, default a day) is refused, as is one that lives that long
/// from now without an `iat`.
#[tokio::test]
async fn tokens_living_longer_than_the_deployment_allows_are_refused() {
    let api = ApiStack::start_with(|var| (var == "JWT_MAX_LIFETIME_SECS").then(|| "3600".into())).await;
    let auth = &api.stack.sandman.config.auth;
    let claims = |lifetime: u64, iat: bool| {
        let mut claims = json!({"team_id": api.stack.team().as_str(), "sub": "u", "exp": now() + lifetime});
        if iat {
            claims["iat"] = json!(now());
        }
        if let Some(issuer) = &auth.issuer {
            claims["iss"] = json!(issuer);
        }
        if let Some(audience) = &auth.audience {
            claims["aud"] = json!(audience);
        }
        claims
    };
    let call = |token: String| {
        let api = &api;
        async move { send(&api.router, request(Method::GET, "/v1/projects", Some(&token), None)).await }
    };
    let secret = sandman_local::fixture::JWT_SECRET;
    assert_eq!(call(hs256(claims(3000, true), secret)).await.status, StatusCode::OK);
    for (lifetime, iat) in [(3700, true), (30 * 86_400, true), (30 * 86_400, false)] {
        let reply = call(hs256(claims(lifetime, iat), secret)).await;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(reply.message().contains("lifetime"), "{lifetime} {iat}: {reply:?}");
    }
    let default = ApiStack::start().await;
    let default_auth = &default.stack.sandman.config.auth;
    let mut long = json!({"team_id": default.stack.team().as_str(), "iat": now(), "exp": now() + 30 * 86_400});
    if let Some(issuer) = &default_auth.issuer {
        long["iss"] = json!(issuer);
    }
    if let Some(audience) = &default_auth.audience {
        long["aud"] = json!(audience);
    }
    let long = hs256(long, secret);
    let reply = send(&default.router, request(Method::GET, "/v1/projects", Some(&long), None)).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
}

/// INFO (key rotation): tokens signed with a previous HS256 secret are accepted while it is
/// listed (`JWT_HS256_PREVIOUS_SECRETS`, `previousJwtHs256Secrets`); others are not.
#[tokio::test]
async fn a_previous_hs256_secret_is_accepted_during_rotation() {
    let current = "the-current-secret-of-enough-length-0001";
    let previous = "the-previous-secret-of-enough-length-002";
    let secrets = Secrets::from_env(|name| match name {
        "JWT_HS256_SECRET" => Some(current.into()),
        "JWT_HS256_PREVIOUS_SECRETS" => Some(previous.into()),
        _ => None,
    })
    .unwrap();
    let api = ApiStack::start().await;
    let auth = &api.stack.sandman.config.auth;
    let verifier = Verifier::new(auth, &secrets).unwrap();
    let mut claims = json!({"team_id": "team-a", "sub": "u", "iat": now(), "exp": now() + 300});
    if let Some(issuer) = &auth.issuer {
        claims["iss"] = json!(issuer);
    }
    if let Some(audience) = &auth.audience {
        claims["aud"] = json!(audience);
    }
    assert!(verifier.verify(&hs256(claims.clone(), current)).await.is_ok());
    let rotated = verifier.verify(&hs256(claims.clone(), previous)).await;
    assert!(rotated.is_ok(), "{rotated:?}");
    assert!(
        verifier
            .verify(&hs256(claims, "some-other-secret-of-enough-length-003"))
            .await
            .is_err()
    );
}
