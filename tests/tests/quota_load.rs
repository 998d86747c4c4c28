//! The live quota under load, through the HTTP API (issue #24): 100 requests at once for one team
//! whose quota is 20 (opens of new projects, wakes and heartbeats of paused ones, restores, live
//! forks). Judged by E2B's truth: the emulator never ran more than 20 of the team's sandboxes at
//! any instant of its history, and no answer was a 5xx.

mod api_kit;

use api_kit::{ApiStack, Reply};
use e2b_emulator::SandboxState;
use futures::future::join_all;
use http::{Method, StatusCode};
use serde_json::json;
use time::OffsetDateTime;

const QUOTA: usize = 20;

/// The most sandboxes E2B ran at once, from every sandbox's history of states.
fn most_running_at_once(api: &ApiStack) -> (usize, usize) {
    let mut changes: Vec<(OffsetDateTime, i32)> = Vec::new();
    let sandboxes = api.stack.emulator.sandboxes();
    for sandbox in &sandboxes {
        let mut running = false;
        for change in &sandbox.history {
            let now_running = change.state == SandboxState::Running;
            if now_running != running {
                changes.push((change.at, if now_running { 1 } else { -1 }));
                running = now_running;
            }
        }
    }
    // At one instant, stops count before starts: a sandbox killed as another starts is not two.
    changes.sort_by_key(|(at, delta)| (*at, *delta));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, delta) in &changes {
        now += delta;
        most = most.max(now);
    }
    (usize::try_from(most).unwrap_or(0), sandboxes.len())
}

#[tokio::test]
async fn a_hundred_parallel_starts_never_run_more_than_the_quota_and_never_answer_5xx() {
    let api = ApiStack::start_with(|name| match name {
        "SANDMAN_MAX_LIVE_SANDBOXES_PER_TEAM" => Some(QUOTA.to_string()),
        "SANDMAN_TEAM_REQUESTS_PER_SECOND" => Some("0".into()),
        _ => None,
    })
    .await;
    // 5 running sources for live forks; 40 paused projects (20 to wake, 20 with a snapshot to
    // restore); 40 projects never opened.
    let mut snapshots = Vec::new();
    for i in 0..5 {
        api.register(&format!("source{i}")).await;
        assert_eq!(api.open(&format!("source{i}")).await.status, StatusCode::OK);
    }
    for i in 0..40 {
        let project = format!("paused{i}");
        api.register(&project).await;
        assert_eq!(api.open(&project).await.status, StatusCode::OK);
        if i >= 20 {
            let taken = api
                .call(
                    Method::POST,
                    &format!("/v1/projects/{project}/snapshots"),
                    Some(json!({})),
                )
                .await;
            assert_eq!(taken.status, StatusCode::CREATED, "{taken:?}");
            snapshots.push((project.clone(), taken.json["snapshotId"].as_str().unwrap().to_string()));
        }
        let paused = api.post(&format!("/v1/projects/{project}/sandbox/pause")).await;
        assert_eq!(paused.status, StatusCode::OK, "{paused:?}");
    }
    for i in 0..40 {
        api.register(&format!("fresh{i}")).await;
    }
    api.stack.emulator.clear_calls();

    let mut requests: Vec<(Method, String, Option<serde_json::Value>)> = Vec::new();
    for i in 0..40 {
        requests.push((Method::POST, format!("/v1/projects/fresh{i}/sandbox"), None));
    }
    for i in 0..10 {
        requests.push((Method::POST, format!("/v1/projects/paused{i}/sandbox/resume"), None));
        requests.push((
            Method::POST,
            format!("/v1/projects/paused{}/sandbox/activity", i + 10),
            None,
        ));
    }
    for (project, snapshot) in &snapshots {
        requests.push((
            Method::POST,
            format!("/v1/projects/{project}/snapshots/{snapshot}/restore"),
            None,
        ));
    }
    for i in 0..20 {
        requests.push((
            Method::POST,
            format!("/v1/projects/source{}/fork", i % 5),
            Some(json!({"projectId": format!("copy{i}"), "from": "live"})),
        ));
    }
    assert_eq!(requests.len(), 100);
    let replies: Vec<Reply> = join_all(
        requests
            .iter()
            .map(|(method, path, body)| api.call(method.clone(), path, body.clone())),
    )
    .await;

    let server_errors: Vec<_> = requests
        .iter()
        .zip(&replies)
        .filter(|(_, reply)| reply.status.is_server_error())
        .map(|((_, path, _), reply)| format!("{path}: {} {}", reply.status, reply.json))
        .collect();
    assert!(server_errors.is_empty(), "5xx answers: {server_errors:#?}");
    let refused = replies
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS && r.json["error"]["code"] == "quota_exceeded")
        .count();
    let started = replies.iter().filter(|r| r.status.is_success()).count();
    let (most, sandboxes) = most_running_at_once(&api);
    assert!(
        most <= QUOTA,
        "E2B ran {most} of the team's sandboxes at once; its quota is {QUOTA}"
    );
    assert_eq!(
        most, QUOTA,
        "the quota is used, not undershot ({started} started, {refused} refused)"
    );
    assert!(started <= QUOTA - 5, "{started} started beside the 5 running sources");
    assert!(refused > 0, "the quota refused ({refused}), {started} started");
    let starts = api.stack.emulator.calls().len();
    assert!(
        starts > 0 && sandboxes >= 45,
        "E2B was asked ({starts} calls, {sandboxes} sandboxes judged)"
    );
}
