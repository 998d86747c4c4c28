//! Access: every route but `/openapi.json` and `/healthz` needs a valid bearer JWT. HS256 with the
//! shared secret, RS256/ES256 with keys from a JWKS URL (served here on 127.0.0.1).

mod api_kit;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_kit::{ApiStack, assert_error, request, send};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Method, StatusCode, header};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sandman::auth::{JwksSettings, Verifier};
use sandman_local::fixture::JWT_SECRET;
use serde_json::{Value, json};

const RS256_PEM: &str = include_str!("../fixtures/api/rs256-private.pem");
const ES256_PEM: &str = include_str!("../fixtures/api/es256-private.pem");

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
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

async fn status_with(api: &ApiStack, token: &str) -> api_kit::Reply {
    send(&api.router, request(Method::GET, "/v1/projects", Some(token), None)).await
}

#[tokio::test]
async fn every_documented_route_but_docs_and_health_needs_a_token() {
    let api = ApiStack::start().await;
    let document = send(&api.router, request(Method::GET, "/openapi.json", None, None))
        .await
        .json;
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        let concrete = path.replace("{projectId}", "app").replace("{snapshotId}", "01SNAPSHOT");
        for (method, operation) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let reply = send(&api.router, request(method.clone(), &concrete, None, Some(json!({})))).await;
            if operation.get("security").is_none() {
                assert_eq!(reply.status, StatusCode::OK, "{method} {path} is open");
                assert!(
                    ["/openapi.json", "/healthz"].contains(&path.as_str()),
                    "{path} must not be open"
                );
            } else {
                assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
                assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 40, "every protected operation was tried");
}

#[tokio::test]
async fn forged_expired_unsigned_and_misaddressed_tokens_get_401() {
    let api = ApiStack::start_with(|var| match var {
        "JWT_AUDIENCE" => Some("sandman-api".into()),
        "JWT_ISSUER" => Some("https://id.example".into()),
        _ => None,
    })
    .await;
    let team = api.stack.team().to_string();
    let claims = |patch: Value| {
        let mut claims =
            json!({"team_id": team, "sub": "u", "aud": "sandman-api", "iss": "https://id.example", "exp": now() + 300});
        claims
            .as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        claims
    };
    assert_eq!(
        status_with(&api, &hs256(claims(json!({})), JWT_SECRET)).await.status,
        StatusCode::OK,
        "the control token works"
    );
    assert_eq!(
        status_with(&api, &api.token).await.status,
        StatusCode::OK,
        "a minted token carries aud and iss"
    );

    let refused = [
        ("forged", hs256(claims(json!({})), "not-the-secret")),
        ("expired", hs256(claims(json!({"exp": now() - 300})), JWT_SECRET)),
        (
            "wrong audience",
            hs256(claims(json!({"aud": "another-api"})), JWT_SECRET),
        ),
        (
            "wrong issuer",
            hs256(claims(json!({"iss": "https://evil.example"})), JWT_SECRET),
        ),
        ("no audience", {
            let mut c = claims(json!({}));
            c.as_object_mut().unwrap().remove("aud");
            hs256(c, JWT_SECRET)
        }),
        ("bad team", hs256(claims(json!({"team_id": "a b"})), JWT_SECRET)),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(json!({"alg": "none", "typ": "JWT"})),
                b64(claims(json!({})))
            ),
        ),
        ("garbage", "abc.def.ghi".to_string()),
    ];
    for (what, token) in refused {
        let reply = status_with(&api, &token).await;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(!reply.message().contains(JWT_SECRET), "{what}");
    }
    let basic = send(&api.router, {
        let mut r = request(Method::GET, "/v1/projects", None, None);
        r.headers_mut()
            .insert(header::AUTHORIZATION, "Basic dXNlcjpwYXNz".parse().unwrap());
        r
    })
    .await;
    assert_error(&basic, StatusCode::UNAUTHORIZED, "unauthorized");
}

fn b64(value: Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A JWKS endpoint on 127.0.0.1 whose keys the test changes, counting fetches.
struct JwksServer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    async fn start() -> JwksServer {
        let keys: Arc<Mutex<Vec<Value>>> = Arc::default();
        let fetches: Arc<AtomicUsize> = Arc::default();
        let (k, f) = (keys.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let (k, f) = (k.clone(), f.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    axum::Json(json!({"keys": *k.lock().unwrap()}))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        JwksServer {
            url,
            keys,
            fetches,
            task,
        }
    }

    fn publish(&self, pem: &str, alg: Algorithm, kid: &str) {
        let key = encoding_key(pem, alg);
        let mut jwk = Jwk::from_encoding_key(&key, alg).expect("a public JWK");
        jwk.common.key_id = Some(kid.into());
        self.keys.lock().unwrap().push(serde_json::to_value(jwk).unwrap());
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn encoding_key(pem: &str, alg: Algorithm) -> EncodingKey {
    sandman::crypto::install();
    match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        _ => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
    }
}

const JWKS_ISSUER: &str = "https://id.example";
const JWKS_AUDIENCE: &str = "sandman-api";

/// A JWKS on loopback http (allowed only by the explicit flag), its issuer and audience, and
/// HS256 beside it (asked for explicitly).
fn jwks_env(url: String) -> impl Fn(&str) -> Option<String> {
    move |var| match var {
        "JWT_JWKS_URL" => Some(url.clone()),
        "JWT_JWKS_ALLOW_HTTP_LOOPBACK" | "JWT_HS256_WITH_JWKS" => Some("true".into()),
        "JWT_ISSUER" => Some(JWKS_ISSUER.into()),
        "JWT_AUDIENCE" => Some(JWKS_AUDIENCE.into()),
        _ => None,
    }
}

fn signed(pem: &str, alg: Algorithm, kid: Option<&str>, team: &str) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        &json!({"team_id": team, "exp": now() + 300, "iss": JWKS_ISSUER, "aud": JWKS_AUDIENCE}),
        &encoding_key(pem, alg),
    )
    .unwrap()
}

#[tokio::test]
async fn rs256_and_es256_tokens_are_checked_against_the_jwks() {
    let jwks = JwksServer::start().await;
    jwks.publish(RS256_PEM, Algorithm::RS256, "rsa-1");
    let url = jwks.url.clone();
    let api = ApiStack::start_with(jwks_env(url)).await;
    let team = api.stack.team().to_string();
    assert_eq!(jwks.fetches(), 0, "fetched on first use, not before");

    let rsa = signed(RS256_PEM, Algorithm::RS256, Some("rsa-1"), &team);
    assert_eq!(status_with(&api, &rsa).await.status, StatusCode::OK);
    assert_eq!(status_with(&api, &rsa).await.status, StatusCode::OK);
    assert_eq!(jwks.fetches(), 1, "cached after the first fetch");
    assert_eq!(
        status_with(&api, &api.token).await.status,
        StatusCode::OK,
        "HS256 still works beside the JWKS"
    );

    // The EC key is not published yet, and unknown key ids refresh at most once per few minutes.
    let ec = signed(ES256_PEM, Algorithm::ES256, Some("ec-1"), &team);
    for _ in 0..5 {
        assert_error(&status_with(&api, &ec).await, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    assert_eq!(jwks.fetches(), 1, "unknown key ids did not hammer the provider");
    // A token naming a published key id but signed with another (EC) key is refused.
    let forged = signed(ES256_PEM, Algorithm::ES256, Some("rsa-1"), &team);
    assert_error(
        &status_with(&api, &forged).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    // Once published, a verifier allowed to refresh now picks it up on the unknown key id.
    jwks.publish(ES256_PEM, Algorithm::ES256, "ec-1");
    let sandman = api.stack.sandman.clone();
    let settings = JwksSettings {
        min_refresh: Duration::ZERO,
        ..JwksSettings::new(jwks.url.clone())
    };
    let eager = sandman_api::router(
        sandman.clone(),
        Verifier::with_jwks_settings(&sandman.config.auth, &sandman.secrets, settings).unwrap(),
    );
    let reply = send(
        &eager,
        request(
            Method::GET,
            "/v1/projects",
            Some(&signed(ES256_PEM, Algorithm::ES256, Some("ec-1"), &team)),
            None,
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let no_kid = signed(ES256_PEM, Algorithm::ES256, None, &team);
    assert_eq!(
        send(&eager, request(Method::GET, "/v1/projects", Some(&no_kid), None))
            .await
            .status,
        StatusCode::OK,
        "the only EC key"
    );
    jwks.task.abort();
}

#[tokio::test]
async fn an_unreachable_jwks_is_a_503_not_a_401() {
    let JwksServer { url, task, .. } = JwksServer::start().await;
    task.abort();
    let _ = task.await;
    let api = ApiStack::start_with(jwks_env(url)).await;
    let token = signed(RS256_PEM, Algorithm::RS256, Some("rsa-1"), api.stack.team().as_str());
    assert_error(
        &status_with(&api, &token).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "auth_unavailable",
    );
    assert_eq!(
        status_with(&api, &api.token).await.status,
        StatusCode::OK,
        "HS256 tokens do not need the JWKS"
    );
}

#[tokio::test]
async fn docs_and_health_are_open() {
    let api = ApiStack::start().await;
    let health = send(&api.router, request(Method::GET, "/healthz", None, None)).await;
    assert_eq!(
        (health.status, health.json.clone()),
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let doc = send(&api.router, request(Method::GET, "/openapi.json", None, None)).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.headers[header::CONTENT_TYPE], "application/json");
    assert!(doc.json["openapi"].as_str().unwrap().starts_with("3."));
}

#[tokio::test]
async fn keys_past_their_maximum_age_are_fetched_again_and_never_used_stale() {
    let jwks = JwksServer::start().await;
    jwks.publish(RS256_PEM, Algorithm::RS256, "rsa-1");
    let api = ApiStack::start_with(jwks_env(jwks.url.clone())).await;
    let sandman = api.stack.sandman.clone();
    let settings = JwksSettings {
        max_age: Duration::from_secs(3),
        retry_after_failure: Duration::ZERO,
        ..JwksSettings::new(jwks.url.clone())
    };
    let router = sandman_api::router(
        sandman.clone(),
        Verifier::with_jwks_settings(&sandman.config.auth, &sandman.secrets, settings).unwrap(),
    );
    let token = signed(RS256_PEM, Algorithm::RS256, Some("rsa-1"), api.stack.team().as_str());
    let list = || send(&router, request(Method::GET, "/v1/projects", Some(&token), None));
    assert_eq!(list().await.status, StatusCode::OK);
    let fetched = jwks.fetches();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(list().await.status, StatusCode::OK);
    assert!(jwks.fetches() > fetched, "fetched again once past the maximum age");
    jwks.task.abort();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_error(&list().await, StatusCode::SERVICE_UNAVAILABLE, "auth_unavailable");
}
