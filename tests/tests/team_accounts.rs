//! Each team's own E2B account: a team admin registers the team's key through the API; it is
//! stored sealed; every E2B call for the team's projects uses it (the emulator's call log shows
//! which key, by fingerprint); one team's revoked key never stalls another team's pauses.
//! Against DynamoDB Local and an emulator with two E2B accounts.

mod accounts_kit;
mod api_kit;
#[path = "webhook/support.rs"]
mod support;

use std::time::Duration;

use accounts_kit::{Accounts, KEY_B, KEY_C, KEY_LOCAL};
use api_kit::assert_error;
use axum::Router;
use e2b_emulator::{Route, key_fingerprint};
use http::{Method, StatusCode};
use sandman::Sandman;
use sandman::domain::{Actor, ProjectKey, SessionState, TeamId};
use sandman::secrets::{Secret, Secrets};
use sandman::store::Consistency;
use sandman::team_keys::E2bAccount;
use sandman::webhook::sign;
use sandman::workspace::SnapshotFirst;
use serde_json::{Value, json};
use support::{WEBHOOK_SECRET, event_body, metadata_of};
use tower::ServiceExt;

#[tokio::test]
async fn a_team_admin_registers_its_key_and_the_teams_calls_use_it() {
    let accounts = Accounts::start(&[]).await;
    let member = accounts.token("team-b", false);
    let before = accounts.call(Method::GET, "/v1/team/e2b", &member, None).await;
    assert_eq!(before.status, StatusCode::OK, "{before:?}");
    assert_eq!(
        before.json,
        json!({"registered": false, "lastFour": null, "updatedAt": null, "inUse": "deployment-default"})
    );

    let refused = accounts
        .call(Method::PUT, "/v1/team/e2b", &member, Some(json!({"apiKey": KEY_B})))
        .await;
    assert_error(&refused, StatusCode::FORBIDDEN, "forbidden");
    let registered = accounts.register_key("team-b", KEY_B).await;
    assert_eq!(registered.status, StatusCode::OK, "{registered:?}");
    assert_eq!(registered.json["registered"], true);
    assert_eq!(registered.json["lastFour"], "bbbb");
    assert_eq!(registered.json["inUse"], "registered");
    let shown = accounts.call(Method::GET, "/v1/team/e2b", &member, None).await;
    assert_eq!(shown.json["lastFour"], "bbbb");

    // Team B's project is created in E2B team B's account, with B's key; team-local's with the default.
    let (b, b_sandbox) = accounts.running("team-b", "app").await;
    let (local, local_sandbox) = accounts.running("team-local", "app").await;
    assert_eq!(accounts.stack.emulator.sandbox(&b_sandbox).unwrap().team_id, "team-b");
    assert_eq!(
        accounts.stack.emulator.sandbox(&local_sandbox).unwrap().team_id,
        "team-local"
    );
    let creates = accounts.stack.emulator.calls_to(Route::CreateSandbox);
    let used: Vec<_> = creates.iter().map(|c| c.key_fingerprint.clone().unwrap()).collect();
    assert_eq!(used, [key_fingerprint(KEY_B), key_fingerprint(KEY_LOCAL)]);

    // Another instance, with nothing cached, opens the sealed key from the table and pauses with it.
    let other = accounts.another_instance();
    accounts.stack.emulator.clear_calls();
    let record = other.project(&b).await.unwrap();
    other
        .pause(sandman::workspace::PauseRequest {
            key: b.clone(),
            expected_version: record.version,
            sandbox_id: b_sandbox.clone(),
            actor: Actor::User,
            cause: "test".into(),
            idle_by: None,
            snapshot_first: false,
        })
        .await
        .unwrap();
    let pauses = accounts.stack.emulator.calls_to(Route::PauseSandbox);
    assert_eq!(pauses.len(), 1);
    assert_eq!(pauses[0].key_fingerprint, Some(key_fingerprint(KEY_B)));
    assert_eq!(pauses[0].status, 204);
    assert_eq!(accounts.state(&b).await, Some(SessionState::Paused));
    assert_eq!(accounts.state(&local).await, Some(SessionState::Running));

    // With nothing left in B's account (`account_switch.rs` shows the refusal otherwise), forgotten:
    // the team's calls use the deployment's default key again.
    accounts
        .stack
        .sandman
        .kill(&b, SnapshotFirst::Skip, Actor::User)
        .await
        .unwrap();
    let admin = accounts.token("team-b", true);
    let deleted = accounts.call(Method::DELETE, "/v1/team/e2b", &admin, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");
    let after = accounts.call(Method::GET, "/v1/team/e2b", &member, None).await;
    assert_eq!(after.json["registered"], false);
    let team_b = TeamId::parse("team-b").unwrap();
    let now_used = accounts.stack.sandman.e2b_for_team(&team_b).await.unwrap();
    assert_eq!(now_used.fingerprint(), key_fingerprint(KEY_LOCAL));
    accounts.assert_no_key_leaked().await;
}

#[tokio::test]
async fn a_key_e2b_refuses_is_not_stored() {
    let accounts = Accounts::start(&[]).await;
    let before = accounts.stack.table.contents().await;
    for (key, field) in [("e2b_not_a_key_e2b_knows", "apiKey"), ("short", "apiKey")] {
        let reply = accounts.register_key("team-b", key).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(reply.json["error"]["field"], field);
    }
    let admin = accounts.token("team-b", true);
    for body in [json!({"apiKey": 1}), json!({"apiKey": KEY_B, "extra": true}), json!({})] {
        let reply = accounts.call(Method::PUT, "/v1/team/e2b", &admin, Some(body)).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    }
    assert_eq!(accounts.stack.table.contents().await, before);
}

#[tokio::test]
async fn without_an_admin_role_nobody_may_change_a_teams_key() {
    let accounts = Accounts::start(&[("JWT_ADMIN_ROLE", "")]).await;
    assert_eq!(accounts.stack.sandman.config.auth.admin.role, None);
    let reply = accounts.register_key("team-b", KEY_B).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden");
    assert!(reply.message().contains("JWT_ADMIN_ROLE"), "{reply:?}");
    let admin = accounts.token("team-b", true);
    let deleted = accounts.call(Method::DELETE, "/v1/team/e2b", &admin, None).await;
    assert_error(&deleted, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn one_teams_revoked_key_never_stalls_another_teams_pauses() {
    let accounts = Accounts::start(&[("ENFORCER_CONCURRENCY", "1")]).await;
    assert_eq!(accounts.register_key("team-b", KEY_B).await.status, StatusCode::OK);
    let mut revoked = Vec::new();
    for project in ["p1", "p2", "p3"] {
        revoked.push(accounts.running("team-b", project).await.0);
    }
    let (healthy, healthy_sandbox) = accounts.running("team-local", "app").await;
    accounts.stack.advance(Duration::from_secs(120)).await;
    assert!(accounts.stack.emulator.revoke_team_key("team-b", true));
    accounts.stack.emulator.clear_calls();

    let report = accounts.stack.sandman.enforce_idle().await;

    assert_eq!(report.paused, 1, "{report:?}");
    assert_eq!(accounts.state(&healthy).await, Some(SessionState::Paused));
    assert_eq!(
        accounts.stack.emulator.sandbox(&healthy_sandbox).unwrap().state,
        e2b_emulator::SandboxState::Paused
    );
    let pauses = accounts.stack.emulator.calls_to(Route::PauseSandbox);
    let with = |key: &str| {
        pauses
            .iter()
            .filter(|c| c.key_fingerprint == Some(key_fingerprint(key)))
            .count()
    };
    assert_eq!(with(KEY_LOCAL), 1, "{pauses:?}");
    // Team B's first refusal benched the team: its other idle projects wait for the next tick.
    assert_eq!(with(KEY_B), 1, "{pauses:?}");
    assert!(
        pauses
            .iter()
            .all(|c| c.key_fingerprint != Some(key_fingerprint(KEY_B)) || c.status == 401)
    );
    for key in &revoked {
        assert_eq!(accounts.state(key).await, Some(SessionState::Running), "{key}");
    }
    accounts.assert_no_key_leaked().await;
}

/// The webhook function over the same table: it holds only the deployment's webhook secret.
fn webhook_receiver(accounts: &Accounts) -> Router {
    let sandman = &accounts.stack.sandman;
    let receiver = Sandman::new(
        sandman.store.clone(),
        (*sandman.config).clone(),
        Secrets {
            webhook_secrets: vec![Secret::new(WEBHOOK_SECRET)],
            ..Secrets::default()
        },
        sandman.clock.clone(),
    )
    .unwrap();
    sandman_webhook::router(receiver)
}

async fn deliver(receiver: &Router, path: &str, body: &[u8], secret: &str) -> (u16, Value) {
    let request = http::Request::post(path)
        .header("content-type", "application/json")
        .header("e2b-signature", sign(secret, body))
        .body(axum::body::Body::from(body.to_vec()))
        .unwrap();
    let response = receiver.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A `paused` event for `key`'s sandbox, from E2B team `e2b_team`.
async fn paused_event(accounts: &Accounts, key: &ProjectKey, sandbox: &str, e2b_team: &str) -> Vec<u8> {
    let record = accounts
        .stack
        .store()
        .get_project(key, Consistency::Strong)
        .await
        .unwrap()
        .unwrap();
    let session = record.session.unwrap().session_id;
    let id = format!("evt-{}-{e2b_team}", key.team);
    let body = event_body(
        &id,
        "paused",
        accounts.stack.clock.now(),
        sandbox,
        metadata_of(key, &session),
    );
    let mut event: Value = serde_json::from_slice(&body).unwrap();
    event["sandbox_team_id"] = json!(e2b_team);
    serde_json::to_vec(&event).unwrap()
}

#[tokio::test]
async fn each_account_posts_to_its_own_url_with_its_own_secret_and_moves_only_its_own_projects() {
    let accounts = Accounts::start(&[]).await;
    assert_eq!(accounts.register_key("team-b", KEY_B).await.status, StatusCode::OK);
    let (b, b_sandbox) = accounts.running("team-b", "app").await;
    let (local, local_sandbox) = accounts.running("team-local", "app").await;
    let team_b = E2bAccount::Team(TeamId::parse("team-b").unwrap());
    let store = accounts.stack.store();
    // What each account's webhook registration reported as its E2B team.
    assert!(store.set_account_e2b_team(&team_b, "team-b").await.unwrap());
    assert!(
        store
            .set_account_e2b_team(&E2bAccount::Default, "team-local")
            .await
            .unwrap()
    );
    let deployment = Secret::new(WEBHOOK_SECRET);
    let (b_secret, default_secret) = (
        team_b.webhook_secret(&deployment),
        E2bAccount::Default.webhook_secret(&deployment),
    );
    let (b_url, default_url) = (team_b.webhook_path(), E2bAccount::Default.webhook_path());
    let receiver = webhook_receiver(&accounts);
    let b_paused = paused_event(&accounts, &b, &b_sandbox, "team-b").await;
    let before = accounts.stack.table.contents().await;

    // Signed for team-local's account (the default), sent to team B's URL, and the other way round.
    let (status, answer) = deliver(&receiver, &b_url, &b_paused, default_secret.expose()).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("invalid_signature")),
        "{answer}"
    );
    let (status, _) = deliver(&receiver, &default_url, &b_paused, b_secret.expose()).await;
    assert_eq!(status, 401);
    // The deployment secret itself is no account's secret.
    let (status, _) = deliver(&receiver, &b_url, &b_paused, WEBHOOK_SECRET).await;
    assert_eq!(status, 401);
    // Signed by B's account, but naming team-local's project in its metadata.
    let foreign = paused_event(&accounts, &local, &local_sandbox, "team-b").await;
    let (status, answer) = deliver(&receiver, &b_url, &foreign, b_secret.expose()).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("wrong_account")),
        "{answer}"
    );
    // Signed for B's URL, about a sandbox of another E2B team.
    let other_team = paused_event(&accounts, &b, &b_sandbox, "team-local").await;
    let (status, answer) = deliver(&receiver, &b_url, &other_team, b_secret.expose()).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("wrong_account")),
        "{answer}"
    );
    // The original URL speaks for the default account: not for a team with its own key.
    let (status, answer) = deliver(&receiver, "/", &b_paused, WEBHOOK_SECRET).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("wrong_account")),
        "{answer}"
    );
    for path in ["/accounts/teams/", "/accounts/nobody", "/accounts/teams/team-b/x"] {
        let (status, _) = deliver(&receiver, path, &b_paused, b_secret.expose()).await;
        assert_eq!(status, 404, "{path}");
    }
    // Any other path is the original URL: the deployment secret, not an account's.
    let (status, _) = deliver(&receiver, "/elsewhere", &b_paused, b_secret.expose()).await;
    assert_eq!(status, 401);
    assert_eq!(
        accounts.stack.table.contents().await,
        before,
        "a refused event changed the table"
    );

    let (status, answer) = deliver(&receiver, &b_url, &b_paused, b_secret.expose()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(accounts.state(&b).await, Some(SessionState::Paused));
    assert_eq!(accounts.state(&local).await, Some(SessionState::Running));
    let local_paused = paused_event(&accounts, &local, &local_sandbox, "team-local").await;
    let (status, answer) = deliver(&receiver, &default_url, &local_paused, default_secret.expose()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(accounts.state(&local).await, Some(SessionState::Paused));
}

/// Team C's key is configured by the deployment, not registered: once its account's webhook is
/// registered (which records its E2B team), the default account's URLs no longer move its
/// projects, whether or not the deployment accepts registered keys.
#[tokio::test]
async fn the_default_account_never_speaks_for_a_team_with_an_account_of_its_own() {
    const WRAP_LOCAL: &[(&str, &str)] = &[("SANDMAN_TEAM_KEYS_WRAP", "local")];
    const WRAP_OFF: &[(&str, &str)] = &[("SANDMAN_TEAM_KEYS_WRAP", "")];
    for extra in [WRAP_LOCAL, WRAP_OFF] {
        let accounts = Accounts::start(extra).await;
        assert_eq!(accounts.stack.sandman.team_keys.is_some(), extra == WRAP_LOCAL);
        let (c, c_sandbox) = accounts.running("team-c", "app").await;
        let (local, local_sandbox) = accounts.running("team-local", "app").await;
        assert_eq!(accounts.stack.emulator.sandbox(&c_sandbox).unwrap().team_id, "team-c");
        let sandman = &accounts.stack.sandman;
        let team_c = E2bAccount::Team(TeamId::parse("team-c").unwrap());
        let base = "https://hooks.example.lambda-url.us-east-1.on.aws/";
        for account in [&team_c, &E2bAccount::Default] {
            sandman_local::register::register_account(sandman, account, base)
                .await
                .unwrap();
        }
        let receiver = webhook_receiver(&accounts);
        let default_secret = E2bAccount::Default.webhook_secret(&Secret::new(WEBHOOK_SECRET));
        let default_url = E2bAccount::Default.webhook_path();
        let before = accounts.stack.table.contents().await;

        // A sandbox of the default account whose metadata names team C's project.
        let forged = paused_event(&accounts, &c, &local_sandbox, "team-local").await;
        for (url, secret) in [(default_url.as_str(), default_secret.expose()), ("/", WEBHOOK_SECRET)] {
            let (status, answer) = deliver(&receiver, url, &forged, secret).await;
            assert_eq!(
                (status, answer["error"]["code"].as_str()),
                (403, Some("wrong_account")),
                "{url}: {answer}"
            );
        }
        assert_eq!(
            accounts.stack.table.contents().await,
            before,
            "a refused event changed the table"
        );
        assert_eq!(accounts.state(&c).await, Some(SessionState::Running));

        // Team C's own account moves it; the default account still moves a team without one.
        let c_paused = paused_event(&accounts, &c, &c_sandbox, "team-c").await;
        let c_secret = team_c.webhook_secret(&Secret::new(WEBHOOK_SECRET));
        let (status, answer) = deliver(&receiver, &team_c.webhook_path(), &c_paused, c_secret.expose()).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(accounts.state(&c).await, Some(SessionState::Paused));
        let local_paused = paused_event(&accounts, &local, &local_sandbox, "team-local").await;
        let (status, answer) = deliver(&receiver, &default_url, &local_paused, default_secret.expose()).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(accounts.state(&local).await, Some(SessionState::Paused));
    }
}

#[tokio::test]
async fn the_registration_command_registers_each_accounts_webhook_with_its_own_key_and_secret() {
    let accounts = Accounts::start(&[]).await;
    assert_eq!(accounts.register_key("team-b", KEY_B).await.status, StatusCode::OK);
    let team_b = E2bAccount::Team(TeamId::parse("team-b").unwrap());
    let base = "https://hooks.example.lambda-url.us-east-1.on.aws/";
    let sandman = &accounts.stack.sandman;
    accounts.stack.emulator.clear_calls();

    let b = sandman_local::register::register_account(sandman, &team_b, base)
        .await
        .unwrap();
    let default = sandman_local::register::register_account(sandman, &E2bAccount::Default, base)
        .await
        .unwrap();
    let no_key = E2bAccount::Team(TeamId::parse("team-d").unwrap());
    assert!(
        sandman_local::register::register_account(sandman, &no_key, base)
            .await
            .is_err()
    );

    assert_eq!(
        b.webhook().url,
        format!("{}/accounts/teams/team-b", base.trim_end_matches('/'))
    );
    assert_eq!(
        default.webhook().url,
        format!("{}/accounts/default", base.trim_end_matches('/'))
    );
    let posts: Vec<_> = accounts
        .stack
        .emulator
        .calls_to(Route::Webhooks)
        .into_iter()
        .filter(|c| c.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2, "{posts:?}");
    let deployment = Secret::new(WEBHOOK_SECRET);
    for (call, key, account) in [
        (&posts[0], KEY_B, &team_b),
        (&posts[1], KEY_LOCAL, &E2bAccount::Default),
    ] {
        assert_eq!(call.key_fingerprint, Some(key_fingerprint(key)));
        let sent = call.body.as_ref().and_then(|b| b["signatureSecret"].as_str());
        assert_eq!(sent, Some(account.webhook_secret(&deployment).expose()));
    }
    let store = accounts.stack.store();
    assert_eq!(
        store.account(&team_b).await.unwrap().unwrap().e2b_team_id.as_deref(),
        Some("team-b")
    );
    let recorded = store.account(&E2bAccount::Default).await.unwrap().unwrap();
    assert_eq!(recorded.e2b_team_id.as_deref(), Some("team-local"));
    // The key is still registered after its webhook was.
    assert!(
        store
            .team_key(&TeamId::parse("team-b").unwrap(), Consistency::Strong)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn the_reconciler_lists_each_registered_account_with_its_own_key() {
    let accounts = Accounts::start(&[]).await;
    assert_eq!(accounts.register_key("team-b", KEY_B).await.status, StatusCode::OK);
    let (b, b_sandbox) = accounts.running("team-b", "app").await;
    let team_b = TeamId::parse("team-b").unwrap();
    // Paused in E2B behind Sandman's back, with team B's key.
    let e2b = accounts.stack.sandman.e2b_for_team(&team_b).await.unwrap();
    e2b.pause(&b_sandbox).await.unwrap();
    accounts.stack.emulator.clear_calls();

    // Another instance, nothing cached: it finds B's account in the table and lists it with B's key.
    let report = accounts.another_instance().reconcile().await;

    assert_eq!(report.drift_paused, 1, "{report:?}");
    assert_eq!(report.accounts_unlisted, 0, "{report:?}");
    assert_eq!(accounts.state(&b).await, Some(SessionState::Paused));
    let lists = accounts.stack.emulator.calls_to(Route::ListSandboxes);
    let mut used: Vec<_> = lists.iter().filter_map(|c| c.key_fingerprint.clone()).collect();
    used.sort();
    used.dedup();
    // Team C's key is configured by the deployment: its account is listed too.
    let mut expected = vec![
        key_fingerprint(KEY_LOCAL),
        key_fingerprint(KEY_B),
        key_fingerprint(KEY_C),
    ];
    expected.sort();
    assert_eq!(used, expected, "each account listed with its own key");
    accounts.assert_no_key_leaked().await;
}
