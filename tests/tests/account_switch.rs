//! Changing a team's E2B key never strands its sandboxes or snapshots: a key of another E2B
//! account (`PUT /v1/team/e2b`), or the deployment's key a `DELETE` falls back to, is refused with
//! 409 `account_in_use` while the team has anything in its current account that the other key
//! cannot reach; another key of the same account is a rotation and is accepted. E2B is asked with
//! the other key about one sandbox (else one snapshot); the emulator's call log shows the key.
//! Against DynamoDB Local and an emulator with several E2B accounts.

mod accounts_kit;
mod api_kit;

use accounts_kit::{Accounts, KEY_B, KEY_B2, KEY_LOCAL};
use api_kit::assert_error;
use e2b_emulator::{Fault, Route, key_fingerprint};
use http::{Method, StatusCode};
use sandman::domain::{Actor, SnapshotKind, TeamId};
use sandman::store::Consistency;
use sandman::workspace::SnapshotFirst;

fn team_b() -> TeamId {
    TeamId::parse("team-b").unwrap()
}

/// The last four characters of team B's registered key, as the table has it.
async fn registered_last_four(accounts: &Accounts) -> Option<String> {
    let record = accounts
        .stack
        .store()
        .team_key(&team_b(), Consistency::Strong)
        .await
        .unwrap();
    record.map(|record| record.last_four)
}

/// The key team B's calls use now, by fingerprint, as a fresh instance finds it.
async fn key_in_use(accounts: &Accounts) -> String {
    let e2b = accounts.another_instance().e2b_for_team(&team_b()).await.unwrap();
    e2b.fingerprint()
}

/// The keys (by fingerprint) and statuses of the calls made to `route` since the log was cleared.
fn calls(accounts: &Accounts, route: Route) -> Vec<(Option<String>, u16)> {
    let calls = accounts.stack.emulator.calls_to(route);
    calls.into_iter().map(|c| (c.key_fingerprint, c.status)).collect()
}

async fn team_b_with_a_running_sandbox() -> (Accounts, String) {
    let accounts = Accounts::start(&[]).await;
    assert_eq!(accounts.register_key("team-b", KEY_B).await.status, StatusCode::OK);
    let (_, sandbox) = accounts.running("team-b", "app").await;
    accounts.stack.emulator.clear_calls();
    (accounts, sandbox)
}

#[tokio::test]
async fn a_key_of_another_account_is_refused_while_the_team_has_a_running_sandbox() {
    let (accounts, sandbox) = team_b_with_a_running_sandbox().await;
    let before = accounts.stack.table.contents().await;

    let refused = accounts.register_key("team-b", KEY_LOCAL).await;

    assert_error(&refused, StatusCode::CONFLICT, "account_in_use");
    assert!(
        refused
            .message()
            .contains("1 running or paused sandbox(es) and 0 snapshot(s)"),
        "{refused:?}"
    );
    assert_eq!(accounts.stack.table.contents().await, before, "the table changed");
    assert_eq!(registered_last_four(&accounts).await.as_deref(), Some("bbbb"));
    assert_eq!(key_in_use(&accounts).await, key_fingerprint(KEY_B));
    // E2B was asked about the team's sandbox with the new key, and did not know it.
    let asked = accounts.stack.emulator.calls_to(Route::GetSandbox);
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].path, format!("/sandboxes/{sandbox}"));
    assert_eq!(
        (asked[0].key_fingerprint.clone(), asked[0].status),
        (Some(key_fingerprint(KEY_LOCAL)), 404)
    );
    accounts.assert_no_key_leaked().await;
}

#[tokio::test]
async fn another_key_of_the_same_account_is_a_rotation() {
    let (accounts, sandbox) = team_b_with_a_running_sandbox().await;

    let rotated = accounts.register_key("team-b", KEY_B2).await;

    assert_eq!(rotated.status, StatusCode::OK, "{rotated:?}");
    assert_eq!(rotated.json["lastFour"], "2b2b");
    assert_eq!(registered_last_four(&accounts).await.as_deref(), Some("2b2b"));
    assert_eq!(key_in_use(&accounts).await, key_fingerprint(KEY_B2));
    assert_eq!(
        calls(&accounts, Route::GetSandbox),
        [(Some(key_fingerprint(KEY_B2)), 200)]
    );
    assert!(accounts.stack.emulator.sandbox(&sandbox).is_some());
    accounts.assert_no_key_leaked().await;
}

#[tokio::test]
async fn with_nothing_left_in_its_account_a_team_may_switch() {
    let (accounts, _) = team_b_with_a_running_sandbox().await;
    let project = accounts_kit::Accounts::key("team-b", "app");
    accounts
        .stack
        .sandman
        .kill(&project, SnapshotFirst::Skip, Actor::User)
        .await
        .unwrap();
    accounts.stack.emulator.clear_calls();

    let switched = accounts.register_key("team-b", KEY_LOCAL).await;

    assert_eq!(switched.status, StatusCode::OK, "{switched:?}");
    assert_eq!(key_in_use(&accounts).await, key_fingerprint(KEY_LOCAL));
    // Nothing to ask E2B about: only the key itself was checked.
    assert!(calls(&accounts, Route::GetSandbox).is_empty());
    assert!(calls(&accounts, Route::ListSnapshots).is_empty());
    accounts.assert_no_key_leaked().await;
}

#[tokio::test]
async fn forgetting_the_key_is_refused_while_its_account_holds_the_teams_sandboxes() {
    let (accounts, _) = team_b_with_a_running_sandbox().await;
    let admin = accounts.token("team-b", true);
    let before = accounts.stack.table.contents().await;

    let refused = accounts.call(Method::DELETE, "/v1/team/e2b", &admin, None).await;

    assert_error(&refused, StatusCode::CONFLICT, "account_in_use");
    assert!(refused.message().contains("the deployment's key"), "{refused:?}");
    assert_eq!(accounts.stack.table.contents().await, before, "the table changed");
    assert_eq!(key_in_use(&accounts).await, key_fingerprint(KEY_B));
    // Asked with the key the team would fall back to: the deployment's default.
    assert_eq!(
        calls(&accounts, Route::GetSandbox),
        [(Some(key_fingerprint(KEY_LOCAL)), 404)]
    );
}

#[tokio::test]
async fn a_ready_snapshot_decides_when_no_sandbox_is_left() {
    let (accounts, _) = team_b_with_a_running_sandbox().await;
    let sandman = &accounts.stack.sandman;
    let project = accounts_kit::Accounts::key("team-b", "app");
    let record = sandman.project(&project).await.unwrap();
    sandman
        .create_snapshot(&record, SnapshotKind::Manual, "keep".into())
        .await
        .unwrap();
    sandman.kill(&project, SnapshotFirst::Skip, Actor::User).await.unwrap();
    accounts.stack.emulator.clear_calls();

    let refused = accounts.register_key("team-b", KEY_LOCAL).await;
    assert_error(&refused, StatusCode::CONFLICT, "account_in_use");
    assert!(
        refused
            .message()
            .contains("0 running or paused sandbox(es) and 1 snapshot(s)"),
        "{refused:?}"
    );
    assert_eq!(registered_last_four(&accounts).await.as_deref(), Some("bbbb"));

    let rotated = accounts.register_key("team-b", KEY_B2).await;
    assert_eq!(rotated.status, StatusCode::OK, "{rotated:?}");
    // One page of at most one snapshot, filtered by the snapshot's id, with each new key.
    let asked = accounts.stack.emulator.calls_to(Route::ListSnapshots);
    let keys: Vec<_> = asked.iter().map(|c| c.key_fingerprint.clone().unwrap()).collect();
    assert_eq!(keys, [key_fingerprint(KEY_LOCAL), key_fingerprint(KEY_B2)]);
    assert!(
        asked
            .iter()
            .all(|c| c.query.as_deref().is_some_and(|q| q.contains("limit=1")))
    );
    assert!(calls(&accounts, Route::GetSandbox).is_empty());
}

#[tokio::test]
async fn an_ambiguous_answer_from_e2b_stores_nothing() {
    let (accounts, _) = team_b_with_a_running_sandbox().await;
    let before = accounts.stack.table.contents().await;
    accounts.stack.emulator.set_fault(
        Route::GetSandbox,
        Fault {
            fail_next: 100,
            error_status: 503,
            ..Fault::default()
        },
    );

    let refused = accounts.register_key("team-b", KEY_B2).await;

    assert_error(&refused, StatusCode::SERVICE_UNAVAILABLE, "e2b_unavailable");
    assert_eq!(accounts.stack.table.contents().await, before, "the table changed");
    assert_eq!(registered_last_four(&accounts).await.as_deref(), Some("bbbb"));
}
