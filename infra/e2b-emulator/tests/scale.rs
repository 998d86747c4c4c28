//! Thousands of sandboxes: listing walks them all and one clock jump expires them all.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Api, start};
use e2b_emulator::SandboxState;
use serde_json::json;

const SANDBOXES: usize = 3000;
const WORKERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_thousands_of_sandboxes() {
    let emulator = start().await;
    let api = Api::new(&emulator);
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let api = api.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in (worker..SANDBOXES).step_by(WORKERS) {
                    let auto_pause = n % 2 == 0;
                    ids.push(
                        api.create(json!({"templateID": "base", "timeout": 60 + n % 7, "autoPause": auto_pause}))
                            .await,
                    );
                }
                ids
            })
        })
        .collect();
    let mut created = HashSet::new();
    for worker in workers {
        created.extend(worker.await.expect("worker"));
    }
    assert_eq!(created.len(), SANDBOXES);

    let mut listed = HashSet::new();
    let mut path = "/v2/sandboxes?limit=100".to_owned();
    loop {
        let page = api.get(&path).await;
        listed.extend(
            page.body
                .as_array()
                .expect("array")
                .iter()
                .map(|s| s["sandboxID"].as_str().unwrap_or_default().to_owned()),
        );
        match page.headers.get("x-next-token").and_then(|v| v.to_str().ok()) {
            Some(token) => path = format!("/v2/sandboxes?limit=100&nextToken={token}"),
            None => break,
        }
    }
    assert_eq!(listed, created);

    emulator.advance_clock(Duration::from_secs(120)).await;
    let states: Vec<_> = emulator.sandboxes().iter().map(|s| s.state).collect();
    assert_eq!(
        states.iter().filter(|s| **s == SandboxState::Paused).count(),
        SANDBOXES / 2
    );
    assert_eq!(
        states.iter().filter(|s| **s == SandboxState::Killed).count(),
        SANDBOXES / 2
    );
    emulator.shutdown().await;
}
