//! The E2B client against the E2B emulator: every call, every error mapping, the retry policy,
//! the call deadline, team-scoped keys and pagination.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use e2b_emulator::{Emulator, EmulatorConfig, Fault, Route, TeamAccount};
use sandman::e2b::{
    ApiKey, E2b, E2bAccounts, E2bClient, E2bError, E2bSettings, NewSandbox, NewWebhook, SandboxFilter, SandboxNetwork,
    SandboxState, Secret, WebhookUpdate,
};
use serde_json::json;

const TEAM_A: &str = "team-a";
const KEY_A: &str = "e2b_key_team_a";
const TEAM_B: &str = "team-b";
const KEY_B: &str = "e2b_key_team_b";

async fn emulator() -> Emulator {
    captured_logs();
    let config = EmulatorConfig {
        teams: vec![TeamAccount::new(TEAM_A, KEY_A), TeamAccount::new(TEAM_B, KEY_B)],
        snapshot_duration: Duration::ZERO,
        ..EmulatorConfig::default()
    };
    Emulator::start(config).await.expect("emulator starts")
}

/// Small backoffs so retries are quick; a generous deadline so only deadline tests hit it.
fn settings(base_url: String) -> E2bSettings {
    E2bSettings {
        base_url,
        call_deadline: Duration::from_secs(10),
        max_attempts: 4,
        base_backoff: Duration::from_millis(2),
        max_backoff: Duration::from_millis(20),
        allow_http_loopback: true,
    }
}

fn e2b_with(settings: E2bSettings, key: &str) -> E2b {
    captured_logs();
    let client = E2bClient::new(settings).expect("client builds");
    E2b::new(client, ApiKey::new(key).expect("valid key"))
}

fn e2b(emulator: &Emulator) -> E2b {
    e2b_with(settings(emulator.base_url()), KEY_A)
}

fn new_sandbox(project: &str) -> NewSandbox {
    NewSandbox {
        template_id: "base".into(),
        timeout: Duration::from_secs(300),
        auto_pause: true,
        metadata: BTreeMap::from([("projectId".into(), project.into())]),
        env_vars: BTreeMap::from([("GREETING".into(), sandman::e2b::Secret::new("hello"))]),
        secure: true,
        network: SandboxNetwork {
            allow_public_traffic: false,
            rules: Default::default(),
        },
    }
}

fn fail_always(status: u16) -> Fault {
    Fault {
        error_rate: 1.0,
        error_status: status,
        ..Fault::default()
    }
}

fn statuses(emulator: &Emulator, route: Route) -> Vec<u16> {
    emulator.calls_to(route).iter().map(|call| call.status).collect()
}

// ---- every call ----

#[tokio::test]
async fn a_sandbox_goes_through_its_whole_life() {
    let emulator = emulator().await;
    let e2b = e2b(&emulator);

    let created = e2b.create_sandbox(&new_sandbox("p1")).await.expect("create");
    let id = created.sandbox_id.as_str();
    assert_eq!(created.template_id, "base");
    assert!(!created.envd_version.is_empty());
    let sent = emulator.calls_to(Route::CreateSandbox)[0].clone();
    assert_eq!(sent.path, "/v2/sandboxes");
    assert_eq!(
        sent.body,
        Some(json!({"templateID": "base", "timeout": 300, "autoPause": true,
                    "metadata": {"projectId": "p1"}, "envVars": {"GREETING": "hello"},
                    "secure": true, "network": {"allowPublicTraffic": false}}))
    );

    let detail = e2b.get_sandbox(id).await.expect("get");
    assert_eq!(detail.state, SandboxState::Running);
    assert_eq!(detail.metadata["projectId"], "p1");
    assert_eq!(detail.end_at - detail.started_at, time::Duration::seconds(300));

    e2b.set_timeout(id, Duration::from_secs(60)).await.expect("set timeout");
    let shortened = e2b.get_sandbox(id).await.expect("get").end_at;
    assert!(shortened < detail.end_at, "set_timeout can shorten");
    e2b.refresh(id, Duration::from_secs(600)).await.expect("refresh");
    assert!(e2b.get_sandbox(id).await.expect("get").end_at > shortened);
    assert_eq!(
        emulator.calls_to(Route::SetTimeout)[0].body,
        Some(json!({"timeout": 60}))
    );
    assert_eq!(
        emulator.calls_to(Route::RefreshSandbox)[0].body,
        Some(json!({"duration": 600}))
    );

    emulator.advance_clock(Duration::from_secs(30)).await;
    let metrics = e2b
        .metrics(id, detail.started_at, emulator.now())
        .await
        .expect("metrics");
    assert!(!metrics.is_empty());
    let started = detail.started_at.unix_timestamp();
    assert!(
        metrics
            .iter()
            .all(|m| m.timestamp.unix_timestamp() >= started && m.mem_total > 0)
    );

    e2b.pause(id).await.expect("pause");
    assert_eq!(e2b.get_sandbox(id).await.expect("get").state, SandboxState::Paused);
    let again = e2b.pause(id).await.expect_err("already paused");
    assert!(again.is_conflict(), "{again:?}");

    let resumed = e2b.connect(id, Duration::from_secs(900)).await.expect("connect");
    assert!(resumed.resumed);
    assert_eq!(resumed.sandbox.sandbox_id, id);
    let connect = emulator.calls_to(Route::ConnectSandbox)[0].clone();
    assert_eq!(connect.path, format!("/v2/sandboxes/{id}/connect"));
    assert_eq!(connect.body, Some(json!({"timeout": 900})));
    let running = e2b.connect(id, Duration::from_secs(900)).await.expect("connect");
    assert!(!running.resumed);

    e2b.kill(id).await.expect("kill");
    assert_eq!(
        emulator.sandbox(id).expect("known").state,
        e2b_emulator::SandboxState::Killed
    );
    assert!(e2b.get_sandbox(id).await.expect_err("gone").is_not_found());
    assert!(e2b.kill(id).await.expect_err("gone").is_not_found());
}

#[tokio::test]
async fn listing_follows_every_page_and_applies_the_filter() {
    let emulator = emulator().await;
    let e2b = e2b(&emulator);
    let tricky = "batch one&two=three";
    let mut wanted = BTreeSet::new();
    for _ in 0..105 {
        let sandbox = e2b.create_sandbox(&new_sandbox(tricky)).await.expect("create");
        wanted.insert(sandbox.sandbox_id);
    }
    let other = e2b.create_sandbox(&new_sandbox("other")).await.expect("create");
    let paused = wanted.first().expect("some").clone();
    e2b.pause(&paused).await.expect("pause");
    emulator.clear_calls();

    let by_project = SandboxFilter {
        metadata: BTreeMap::from([("projectId".into(), tricky.into())]),
        ..SandboxFilter::default()
    };
    let listed = e2b.list_sandboxes(&by_project).await.expect("list");
    let ids: BTreeSet<_> = listed.iter().map(|s| s.sandbox_id.clone()).collect();
    assert_eq!(listed.len(), 105, "no duplicates across pages");
    assert_eq!(ids, wanted);
    let pages = emulator.calls_to(Route::ListSandboxes);
    assert_eq!(pages.len(), 2);
    assert!(pages[1].query.as_deref().unwrap_or("").contains("nextToken="));

    let paused_only = SandboxFilter {
        states: vec![SandboxState::Paused],
        ..by_project
    };
    let listed = e2b.list_sandboxes(&paused_only).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].sandbox_id, paused);
    assert_eq!(listed[0].state, SandboxState::Paused);

    let everything = e2b.list_sandboxes(&SandboxFilter::default()).await.expect("list");
    assert_eq!(everything.len(), 106);
    assert!(everything.iter().any(|s| s.sandbox_id == other.sandbox_id));
}

#[tokio::test]
async fn snapshots_are_taken_listed_restored_and_deleted() {
    let emulator = emulator().await;
    let e2b = e2b(&emulator);
    let source = e2b.create_sandbox(&new_sandbox("p1")).await.expect("create");
    let id = source.sandbox_id.as_str();

    let named = e2b.create_snapshot(id, Some("nightly")).await.expect("snapshot");
    assert!(named.snapshot_id.contains('/'), "{named:?}");
    assert_eq!(named.names, vec![named.snapshot_id.clone()]);
    let unnamed = e2b.create_snapshot(id, None).await.expect("snapshot");
    assert_eq!(emulator.calls_to(Route::CreateSnapshot)[1].body, Some(json!({})));
    for _ in 0..100 {
        e2b.create_snapshot(id, None).await.expect("snapshot");
    }
    emulator.clear_calls();
    let listed = e2b.list_snapshots(id).await.expect("list");
    assert_eq!(listed.len(), 102);
    assert_eq!(emulator.calls_to(Route::ListSnapshots).len(), 2);

    let restored = NewSandbox {
        template_id: unnamed.snapshot_id.clone(),
        ..new_sandbox("p1")
    };
    let restored = e2b.create_sandbox(&restored).await.expect("restore");
    let template_of_unnamed = emulator
        .snapshots()
        .into_iter()
        .find(|s| s.snapshot_id == unnamed.snapshot_id)
        .expect("the emulator has it")
        .template_id;
    assert_eq!(
        emulator.sandbox(&restored.sandbox_id).expect("known").from_snapshot,
        Some(template_of_unnamed)
    );
    e2b.kill(&restored.sandbox_id).await.expect("kill");

    e2b.delete_snapshot(&named.snapshot_id).await.expect("delete named");
    e2b.delete_snapshot(&unnamed.snapshot_id).await.expect("delete unnamed");
    let left = e2b.list_snapshots(id).await.expect("list");
    assert_eq!(left.len(), 100);
    assert!(left.iter().all(|s| s != &named && s != &unnamed));
    let again = e2b.delete_snapshot(&named.snapshot_id).await.expect_err("gone");
    assert!(again.is_not_found(), "{again:?}");
}

#[tokio::test]
async fn webhooks_are_registered_listed_updated_and_deleted() {
    let emulator = emulator().await;
    let e2b = e2b(&emulator);
    let new = NewWebhook {
        name: "sandman".into(),
        url: "https://sandman.example.com/e2b/webhook".into(),
        events: vec!["sandbox.lifecycle.paused".into(), "sandbox.lifecycle.killed".into()],
        signature_secret: Secret::new("whsec_local"),
        enabled: true,
    };

    let registered = e2b.register_webhook(&new).await.expect("register");
    assert_eq!(registered.team_id, TEAM_A);
    assert_eq!(registered.events, new.events);
    assert!(registered.enabled);
    let sent = emulator.calls_to(Route::Webhooks)[0].body.clone().expect("json body");
    assert_eq!(sent["signatureSecret"], "whsec_local");

    let listed = e2b.list_webhooks().await.expect("list");
    assert_eq!(listed, vec![registered.clone()]);
    assert_eq!(e2b.get_webhook(&registered.id).await.expect("get"), registered);

    let disable = WebhookUpdate {
        enabled: Some(false),
        ..WebhookUpdate::default()
    };
    let updated = e2b.update_webhook(&registered.id, &disable).await.expect("update");
    assert!(!updated.enabled);
    assert_eq!(updated.url, registered.url);

    e2b.delete_webhook(&registered.id).await.expect("delete");
    assert!(e2b.list_webhooks().await.expect("list").is_empty());
    let again = e2b.delete_webhook(&registered.id).await.expect_err("gone");
    assert!(again.is_not_found(), "{again:?}");
}

// ---- error mapping ----

#[tokio::test]
async fn e2b_errors_map_to_their_variants() {
    let emulator = emulator().await;
    let e2b = e2b(&emulator);
    let id = e2b.create_sandbox(&new_sandbox("p1")).await.expect("create").sandbox_id;

    assert!(matches!(e2b.get_sandbox("nope").await, Err(E2bError::NotFound)));

    e2b.pause(&id).await.expect("pause");
    match e2b.pause(&id).await {
        Err(E2bError::Conflict { message }) => assert!(message.contains(&id), "{message}"),
        other => panic!("expected a conflict, got {other:?}"),
    }

    match e2b.refresh(&id, Duration::from_secs(4000)).await {
        Err(E2bError::BadRequest { message }) => assert!(message.contains("3600"), "{message}"),
        other => panic!("expected a bad request, got {other:?}"),
    }

    let stranger = e2b_with(settings(emulator.base_url()), "e2b_not_a_key");
    assert!(matches!(stranger.get_sandbox(&id).await, Err(E2bError::Unauthorized)));

    emulator.set_fault(Route::GetSandbox, fail_always(418));
    match e2b.get_sandbox(&id).await {
        Err(E2bError::Unexpected { status: 418, .. }) => {}
        other => panic!("expected 418, got {other:?}"),
    }
    assert_eq!(statuses(&emulator, Route::GetSandbox).last(), Some(&418));
}

#[tokio::test]
async fn a_429_that_outlives_the_retries_is_rate_limited_with_retry_after() {
    let emulator = emulator().await;
    let e2b = e2b(&emulator);
    emulator.set_fault(
        Route::ListSandboxes,
        Fault {
            rate_limit_burst: 10,
            ..Fault::default()
        },
    );
    match e2b.list_sandboxes(&SandboxFilter::default()).await {
        Err(E2bError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("expected rate limiting, got {other:?}"),
    }
    assert_eq!(statuses(&emulator, Route::ListSandboxes), vec![429; 4]);
}

// ---- retry policy ----

#[tokio::test]
async fn a_rate_limited_call_succeeds_on_its_second_attempt() {
    let emulator = emulator().await;
    let e2b = e2b(&emulator);
    let id = e2b.create_sandbox(&new_sandbox("p1")).await.expect("create").sandbox_id;
    emulator.set_fault(
        Route::GetSandbox,
        Fault {
            rate_limit_burst: 1,
            ..Fault::default()
        },
    );
    let detail = e2b.get_sandbox(&id).await.expect("retried");
    assert_eq!(detail.sandbox_id, id);
    assert_eq!(statuses(&emulator, Route::GetSandbox), vec![429, 200]);
}

#[tokio::test]
async fn a_persistent_500_is_unavailable_after_the_bounded_attempts() {
    let emulator = emulator().await;
    let e2b = e2b(&emulator);
    let id = e2b.create_sandbox(&new_sandbox("p1")).await.expect("create").sandbox_id;
    emulator.set_fault(Route::PauseSandbox, fail_always(500));
    match e2b.pause(&id).await {
        Err(E2bError::Unavailable { attempts, detail }) => {
            assert_eq!(attempts, 4);
            assert!(detail.contains("500"), "{detail}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert_eq!(statuses(&emulator, Route::PauseSandbox), vec![500; 4]);
}

#[tokio::test]
async fn every_transient_status_is_retried_for_safe_calls() {
    let emulator = emulator().await;
    let e2b = e2b(&emulator);
    let id = e2b.create_sandbox(&new_sandbox("p1")).await.expect("create").sandbox_id;
    for status in [500, 502, 503, 504] {
        emulator.clear_calls();
        let once = Fault {
            fail_next: 1,
            error_status: status,
            ..Fault::default()
        };
        emulator.set_fault(Route::SetTimeout, once);
        e2b.set_timeout(&id, Duration::from_secs(120)).await.expect("retried");
        assert_eq!(statuses(&emulator, Route::SetTimeout), vec![status, 204]);
    }
}

#[tokio::test]
async fn creates_are_not_repeated_after_a_server_error() {
    let emulator = emulator().await;
    let e2b = e2b(&emulator);
    let once = Fault {
        fail_next: 1,
        error_status: 500,
        ..Fault::default()
    };
    emulator.set_fault(Route::CreateSandbox, once.clone());
    let error = e2b.create_sandbox(&new_sandbox("p1")).await.expect_err("not retried");
    assert!(matches!(error, E2bError::Unavailable { attempts: 1, .. }), "{error:?}");
    assert_eq!(statuses(&emulator, Route::CreateSandbox), vec![500]);
    assert!(emulator.sandboxes().is_empty());

    let id = e2b.create_sandbox(&new_sandbox("p1")).await.expect("create").sandbox_id;
    emulator.set_fault(
        Route::CreateSnapshot,
        Fault {
            error_status: 503,
            ..once
        },
    );
    let error = e2b.create_snapshot(&id, None).await.expect_err("not retried");
    assert!(matches!(error, E2bError::Unavailable { attempts: 1, .. }), "{error:?}");
    assert_eq!(statuses(&emulator, Route::CreateSnapshot), vec![503]);
    assert!(emulator.snapshots().is_empty());
}

#[tokio::test]
async fn creates_are_repeated_when_refused_with_429() {
    let emulator = emulator().await;
    let e2b = e2b(&emulator);
    let burst = Fault {
        rate_limit_burst: 1,
        ..Fault::default()
    };
    emulator.set_fault(Route::CreateSandbox, burst);
    e2b.create_sandbox(&new_sandbox("p1")).await.expect("retried");
    assert_eq!(statuses(&emulator, Route::CreateSandbox), vec![429, 201]);
    assert_eq!(emulator.sandboxes().len(), 1);
}

// ---- deadline and transport failures ----

#[tokio::test]
async fn the_call_deadline_cuts_a_slow_answer_short() {
    let emulator = emulator().await;
    let e2b = e2b(&emulator);
    let id = e2b.create_sandbox(&new_sandbox("p1")).await.expect("create").sandbox_id;
    let slow = Fault {
        latency: Duration::from_secs(5),
        ..Fault::default()
    };
    emulator.set_fault(Route::GetSandbox, slow);
    let impatient = E2bSettings {
        call_deadline: Duration::from_millis(200),
        ..settings(emulator.base_url())
    };
    match e2b_with(impatient, KEY_A).get_sandbox(&id).await {
        Err(E2bError::Unavailable { attempts, detail }) => {
            assert_eq!(attempts, 1);
            assert!(detail.contains("deadline"), "{detail}");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn the_call_deadline_bounds_all_attempts_together() {
    let emulator = emulator().await;
    let e2b = e2b(&emulator);
    let id = e2b.create_sandbox(&new_sandbox("p1")).await.expect("create").sandbox_id;
    let slow_and_failing = Fault {
        latency: Duration::from_millis(100),
        ..fail_always(503)
    };
    emulator.set_fault(Route::GetSandbox, slow_and_failing);
    let many_attempts = E2bSettings {
        call_deadline: Duration::from_millis(450),
        max_attempts: 50,
        ..settings(emulator.base_url())
    };
    // Every attempt takes at least 100 ms, so at most 5 can start within 450 ms.
    match e2b_with(many_attempts, KEY_A).get_sandbox(&id).await {
        Err(E2bError::Unavailable { attempts, .. }) => {
            assert!((1..=5).contains(&attempts), "{attempts}")
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_e2b_is_unavailable_after_every_attempt() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let e2b = e2b_with(settings(format!("http://{address}")), KEY_A);
    match e2b.get_sandbox("sbx").await {
        Err(E2bError::Unavailable { attempts, .. }) => assert_eq!(attempts, 4),
        other => panic!("expected unavailable, got {other:?}"),
    }
}

// ---- team-scoped credentials ----

#[tokio::test]
async fn each_team_reaches_e2b_with_its_own_key() {
    let emulator = emulator().await;
    let client = E2bClient::new(settings(emulator.base_url())).expect("client");
    let keys = HashMap::from([
        (TEAM_A.to_owned(), ApiKey::new(KEY_A).expect("key")),
        (TEAM_B.to_owned(), ApiKey::new(KEY_B).expect("key")),
    ]);
    let with_default = E2bAccounts::new(client.clone(), Some(ApiKey::new(KEY_B).expect("key")), keys.clone());
    let without_default = E2bAccounts::new(client, None, keys);

    let a = with_default.for_team(TEAM_A).expect("team a");
    let b = with_default.for_team(TEAM_B).expect("team b");
    let in_a = a.create_sandbox(&new_sandbox("p1")).await.expect("create").sandbox_id;
    let in_b = b.create_sandbox(&new_sandbox("p2")).await.expect("create").sandbox_id;
    assert_eq!(emulator.sandbox(&in_a).expect("known").team_id, TEAM_A);
    assert_eq!(emulator.sandbox(&in_b).expect("known").team_id, TEAM_B);
    assert!(b.get_sandbox(&in_a).await.expect_err("not b's").is_not_found());

    let newcomer = with_default.for_team("team-new").expect("falls back to the default");
    let via_default = newcomer
        .create_sandbox(&new_sandbox("p3"))
        .await
        .expect("create")
        .sandbox_id;
    assert_eq!(emulator.sandbox(&via_default).expect("known").team_id, TEAM_B);
    assert!(matches!(
        without_default.for_team("team-new"),
        Err(E2bError::NoCredentials)
    ));

    let teams: Vec<_> = emulator
        .calls_to(Route::CreateSandbox)
        .into_iter()
        .map(|call| call.team_id.unwrap_or_default())
        .collect();
    assert_eq!(teams, vec![TEAM_A, TEAM_B, TEAM_B]);
}

// ---- logging ----

/// Everything logged by this test binary. Installed globally before the first call of every test:
/// a per-test (thread-scoped) subscriber races with tracing's callsite cache under parallel tests.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured_logs() -> &'static CapturedLogs {
    static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first and only subscriber");
        logs
    })
}

#[tokio::test]
async fn calls_are_logged_with_their_route_and_never_with_the_key() {
    let emulator = emulator().await;
    let e2b = e2b(&emulator);
    let id = e2b.create_sandbox(&new_sandbox("p1")).await.expect("create").sandbox_id;
    let once = Fault {
        fail_next: 1,
        ..Fault::default()
    };
    emulator.set_fault(Route::KillSandbox, once);
    e2b.kill(&id).await.expect("kill after a retry");

    let text = captured_logs().text();
    let lines_of_this_sandbox: Vec<_> = text.lines().filter(|line| line.contains(&id)).collect();
    assert!(text.contains("POST /v2/sandboxes"));
    assert!(
        lines_of_this_sandbox
            .iter()
            .any(|line| line.contains("DELETE /sandboxes/{id}") && line.contains("retrying")),
        "{lines_of_this_sandbox:#?}"
    );
    assert!(!text.contains(KEY_A), "the API key leaked into the logs");
    assert!(!text.contains(KEY_B), "the API key leaked into the logs");
}
