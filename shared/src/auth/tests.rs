use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;
use crate::secrets::Secret;

const SECRET: &str = "a-development-secret-of-enough-length";

fn config() -> AuthConfig {
    AuthConfig {
        issuer: Some("https://issuer.test".into()),
        audience: Some("sandman".into()),
        team_claim: "org".into(),
        jwks_url: None,
        hs256: true,
        jwks_max_age: Duration::from_secs(3600),
        admin: Default::default(),
        max_lifetime: Some(Duration::from_secs(3600)),
    }
}

fn verifier(config: &AuthConfig) -> Verifier {
    let secrets = Secrets {
        jwt_hs256_secret: Some(Secret::new(SECRET)),
        ..Secrets::default()
    };
    Verifier::new(config, &secrets).expect("a verifier")
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn sign(claims: serde_json::Value, secret: &str) -> String {
    crate::crypto::install();
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("signs")
}

fn good_claims() -> serde_json::Value {
    json!({"sub": "u1", "org": "team-a", "iss": "https://issuer.test", "aud": "sandman", "exp": now() + 600})
}

fn refusal(result: Result<Caller, AuthError>) -> String {
    match result {
        Err(AuthError::Rejected(reason)) => reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn a_minted_token_names_its_team() {
    let config = config();
    let team = TeamId::parse("team-a").unwrap();
    let token = mint_dev_token(&config, &Secret::new(SECRET), &team, "dev", Duration::from_secs(60)).unwrap();
    let caller = verifier(&config)
        .verify_header(Some(&format!("Bearer {token}")))
        .await
        .unwrap();
    assert_eq!(
        caller,
        Caller {
            team,
            subject: Some("dev".into()),
            admin: false,
        }
    );
}

#[tokio::test]
async fn the_bearer_header_is_required() {
    let verifier = verifier(&config());
    for header in [
        None,
        Some(""),
        Some("Bearer "),
        Some("Basic dXNlcjpwYXNz"),
        Some("token-without-scheme"),
    ] {
        assert!(
            matches!(verifier.verify_header(header).await, Err(AuthError::MissingToken)),
            "{header:?}"
        );
    }
}

#[tokio::test]
async fn forged_expired_and_misaddressed_tokens_are_refused() {
    let verifier = verifier(&config());
    let with = |patch: serde_json::Value| {
        let mut claims = good_claims();
        claims
            .as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        claims
    };
    assert!(refusal(verifier.verify(&sign(good_claims(), "another-secret")).await).contains("signature"));
    assert!(refusal(verifier.verify(&sign(with(json!({"exp": now() - 120})), SECRET)).await).contains("expired"));
    assert!(refusal(verifier.verify(&sign(with(json!({"nbf": now() + 600})), SECRET)).await).contains("not valid yet"));
    assert!(
        refusal(
            verifier
                .verify(&sign(with(json!({"aud": "someone-else"})), SECRET))
                .await
        )
        .contains("audience")
    );
    assert!(
        refusal(
            verifier
                .verify(&sign(with(json!({"iss": "https://evil.test"})), SECRET))
                .await
        )
        .contains("issuer")
    );
    assert!(refusal(verifier.verify(&sign(with(json!({"org": "team#b"})), SECRET)).await).contains("org"));
    let mut no_team = good_claims();
    no_team.as_object_mut().unwrap().remove("org");
    assert!(refusal(verifier.verify(&sign(no_team, SECRET)).await).contains("no org claim"));
    let mut no_exp = good_claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert!(refusal(verifier.verify(&sign(no_exp, SECRET)).await).contains("exp"));
    assert!(
        verifier.verify(&sign(good_claims(), SECRET)).await.is_ok(),
        "the unmodified claims pass"
    );
}

#[tokio::test]
async fn unsigned_and_unexpected_algorithms_are_refused() {
    let verifier = verifier(&config());
    let encode = |value: serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let unsigned = format!(
        "{}.{}.",
        encode(json!({"alg": "none", "typ": "JWT"})),
        encode(good_claims())
    );
    assert!(refusal(verifier.verify(&unsigned).await).contains("unsupported algorithm"));
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &good_claims(),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert!(refusal(verifier.verify(&hs512).await).contains("HS512"));
    // An RS256 header over an HMAC signature must not be checked with the shared secret.
    let hs = sign(good_claims(), SECRET);
    let (_, rest) = hs.split_once('.').unwrap();
    let confused = format!("{}.{rest}", encode(json!({"alg": "RS256", "typ": "JWT"})));
    assert!(refusal(verifier.verify(&confused).await).contains("RS256"));
    assert!(refusal(verifier.verify("not.a.jwt").await).contains("malformed"));
}

#[test]
fn a_verifier_needs_a_way_to_check_tokens() {
    assert!(matches!(
        Verifier::new(&config(), &Secrets::default()),
        Err(AuthError::NotConfigured)
    ));
}

#[tokio::test]
async fn a_secret_alone_does_not_turn_hs256_on() {
    let off = AuthConfig {
        hs256: false,
        ..config()
    };
    let secrets = Secrets {
        jwt_hs256_secret: Some(Secret::new(SECRET)),
        ..Secrets::default()
    };
    assert!(matches!(Verifier::new(&off, &secrets), Err(AuthError::NotConfigured)));
    let jwks_only = AuthConfig {
        jwks_url: Some("https://id.example/jwks.json".into()),
        ..off
    };
    let verifier = Verifier::new(&jwks_only, &secrets).expect("a JWKS verifier");
    let reason = refusal(verifier.verify(&sign(good_claims(), SECRET)).await);
    assert!(reason.contains("HS256"), "{reason}");
}

#[tokio::test]
async fn without_a_configured_audience_or_issuer_neither_is_required() {
    let config = AuthConfig {
        issuer: None,
        audience: None,
        team_claim: "team_id".into(),
        jwks_url: None,
        hs256: true,
        jwks_max_age: Duration::from_secs(3600),
        admin: Default::default(),
        max_lifetime: None,
    };
    let token = sign(json!({"team_id": "t1", "exp": now() + 60, "aud": "anything"}), SECRET);
    assert_eq!(verifier(&config).verify(&token).await.unwrap().team.as_str(), "t1");
}

/// An `iat` set in the future does not stretch a token's life past the bound: it is also counted
/// from now.
#[tokio::test]
async fn a_token_lives_at_most_the_bound_from_iat_and_from_now() {
    let verifier = verifier(&config());
    let mut claims = good_claims();
    claims["iat"] = json!(now() + 29 * 86_400);
    claims["exp"] = json!(now() + 30 * 86_400);
    assert!(refusal(verifier.verify(&sign(claims.clone(), SECRET)).await).contains("lifetime"));
    claims["iat"] = json!(now() - 100);
    claims["exp"] = json!(now() + 3000);
    assert!(verifier.verify(&sign(claims, SECRET)).await.is_ok());
}
