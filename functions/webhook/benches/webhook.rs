//! Webhook receiver benchmark. Prints figures, asserts nothing.
//!
//! 1. CPU work per delivery, without DynamoDB: verify the signature, parse the event, decide the
//!    write (against a session read beforehand). p50 / p99 over many deliveries.
//! 2. Capacity units per event, from `store.capacity()` over real events applied against
//!    DynamoDB Local, by kind of outcome.
//!
//! Run (DynamoDB Local up, `AWS_ENDPOINT_URL_DYNAMODB` exported, e.g. by `make test`'s script):
//!   cargo bench -p sandman-webhook --bench webhook
//! `WEBHOOK_BENCH_ITERATIONS` (default 20000) and `WEBHOOK_BENCH_PROJECTS` (default 50) size it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use sandman::Sandman;
use sandman::clock::Clock;
use sandman::config::Config;
use sandman::domain::{
    Actor, IdlePolicy, ProjectId, ProjectKey, ProjectSpec, RetentionPolicy, SandboxRef, SessionEvent, TeamId,
};
use sandman::secrets::{Secret, Secrets};
use sandman::store::{Capacity, Consistency, ProjectRecord, SessionChanges, SessionWrite, Store};
use sandman::webhook::{Decision, Delivery, Rules, decide, sign, verify_and_parse};
use sandman_local::testkit::TestTable;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-11-01 12:00 UTC);
const CURRENT: &str = "bench-secret-current";
const PREVIOUS: &str = "bench-secret-previous";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn key(i: usize) -> ProjectKey {
    ProjectKey::new(
        TeamId::parse("bench").unwrap(),
        ProjectId::parse(format!("p{i}")).unwrap(),
    )
}

/// A signed body, as E2B would send it, about project `i`'s sandbox.
fn delivery_body(i: usize, kind: &str, id: &str, after: Duration) -> Vec<u8> {
    let at = (T0 + after).format(&Rfc3339).unwrap();
    let mut data = json!({"sandbox_metadata": sandman::sandbox_metadata::for_session(&key(i), &format!("s{i}"))});
    if matches!(kind, "paused" | "killed") {
        data["execution"] =
            json!({"started_at": "2026-11-01T12:00:00Z", "vcpu_count": 2, "memory_mb": 1024, "execution_time": 90_000});
    }
    if kind == "updated" {
        data["set_timeout"] = json!((T0 + Duration::from_secs(7200)).format(&Rfc3339).unwrap());
    }
    serde_json::to_vec(&json!({
        "id": id, "version": "v2", "type": format!("sandbox.lifecycle.{kind}"), "timestamp": at,
        "event_category": "lifecycle", "event_label": kind, "sandbox_id": format!("sbx-{i}"),
        "sandbox_execution_id": "exec-1", "sandbox_template_id": "base", "sandbox_build_id": "b1",
        "sandbox_team_id": "team-e2b", "event_data": data,
    }))
    .unwrap()
}

async fn running_project(store: &Store, i: usize) -> ProjectRecord {
    let spec = ProjectSpec {
        inactivity: Default::default(),
        key: key(i),
        template_id: "base".into(),
        idle: IdlePolicy::default(),
        retention: RetentionPolicy::default(),
        sandbox_timeout: Duration::from_secs(1800),
        snapshot_before_kill: false,
        public_traffic: false,
    };
    let record = store.put_project(&spec, T0).await.unwrap();
    let start = SessionWrite::new(&record, Actor::User, "open", T0)
        .event(SessionEvent::Start)
        .changes(SessionChanges {
            session_id: Some(format!("s{i}")),
            ..Default::default()
        });
    let written = store.write_session(&start).await.unwrap();
    let running = SessionWrite::following(&key(i), written, Actor::User, "created", T0)
        .event(SessionEvent::Running)
        .changes(SessionChanges {
            sandbox: Some(SandboxRef {
                sandbox_id: format!("sbx-{i}"),
                domain: None,
                access_token: None,
            }),
            last_active_at: Some(T0),
            timeout_at: Some(T0 + Duration::from_secs(1800)),
            ..Default::default()
        });
    store.write_session(&running).await.unwrap();
    store.get_project(&key(i), Consistency::Strong).await.unwrap().unwrap()
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99), samples[samples.len() - 1])
}

fn print_latency(label: &str, samples: Vec<Duration>) {
    let n = samples.len();
    let (p50, p99, max) = percentiles(samples);
    println!(
        "  {label:<34} p50 {:>8.1} µs   p99 {:>8.1} µs   max {:>8.1} µs   (n={n})",
        micros(p50),
        micros(p99),
        micros(max)
    );
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// CPU work per delivery: the receiver's cost before and besides its DynamoDB calls.
fn cpu(secrets: &[Secret], records: &[ProjectRecord], iterations: usize) {
    let rules = Rules {
        stuck_after: Duration::from_secs(300),
    };
    let now = T0 + Duration::from_secs(120);
    let bodies: Vec<(Vec<u8>, String)> = (0..records.len())
        .map(|i| {
            let body = delivery_body(i, "paused", &format!("cpu-{i}"), Duration::from_secs(60));
            // Signed with the previous secret: verification tries every configured secret anyway.
            let signature = sign(PREVIOUS, &body);
            (body, signature)
        })
        .collect();
    let (mut whole, mut verify_parse, mut decision) = (
        Vec::with_capacity(iterations),
        Vec::with_capacity(iterations),
        Vec::with_capacity(iterations),
    );
    for n in 0..iterations {
        let i = n % records.len();
        let (body, signature) = &bodies[i];
        let delivery = Delivery {
            signature: Some(signature),
            delivery_id: Some("d1"),
            body,
        };
        let started = Instant::now();
        let verified = verify_and_parse(secrets, &delivery).expect("verifies");
        let parsed = Instant::now();
        let decided = decide(&records[i], &verified.event, &verified.dedupe_id, now, &rules);
        let done = Instant::now();
        assert!(matches!(decided, Decision::Write(_)));
        black_box(decided);
        whole.push(done - started);
        verify_parse.push(parsed - started);
        decision.push(done - parsed);
    }
    println!(
        "CPU per delivery (no DynamoDB), {} B body, {} secrets:",
        bodies[0].0.len(),
        secrets.len()
    );
    print_latency("verify + parse + decide", whole);
    print_latency("  verify + parse", verify_parse);
    print_latency("  decide (build the write)", decision);
}

async fn deliver(sandman: &Sandman, body: &[u8], label: &str, outcomes: &mut Vec<(String, String)>) {
    let signature = sign(CURRENT, body);
    let delivery = Delivery {
        signature: Some(&signature),
        delivery_id: Some("d1"),
        body,
    };
    let receipt = sandman.receive_webhook(delivery).await.expect("applied");
    outcomes.push((label.to_string(), serde_json::to_string(&receipt).unwrap()));
}

fn diff(after: Capacity, before: Capacity) -> Capacity {
    Capacity {
        read_units: after.read_units - before.read_units,
        write_units: after.write_units - before.write_units,
        calls: after.calls - before.calls,
    }
}

/// Real events against DynamoDB Local, capacity per event by kind.
async fn capacity(sandman: &Sandman, projects: usize) {
    let rounds: [(&str, &str, u64); 5] = [
        ("paused (transition + usage)", "paused", 60),
        ("paused again (duplicate)", "paused", 60),
        ("resumed (transition)", "resumed", 70),
        ("updated (timeout refresh)", "updated", 80),
        ("killed (transition + usage)", "killed", 90),
    ];
    println!("Capacity per event, {projects} projects, DynamoDB Local (ReturnConsumedCapacity=TOTAL):");
    let mut total = Capacity::default();
    let mut events = 0u64;
    for (label, kind, after) in rounds {
        let before = sandman.store.capacity().total();
        let mut outcomes = Vec::new();
        for i in 0..projects {
            let id = format!("{kind}-{i}");
            deliver(
                sandman,
                &delivery_body(i, kind, &id, Duration::from_secs(after)),
                label,
                &mut outcomes,
            )
            .await;
        }
        let used = diff(sandman.store.capacity().total(), before);
        let n = projects as f64;
        println!(
            "  {label:<30} {:>5.2} RCU  {:>5.2} WCU  {:>4.1} calls per event   ({})",
            used.read_units / n,
            used.write_units / n,
            used.calls as f64 / n,
            outcomes.first().map(|(_, o)| o.as_str()).unwrap_or("-")
        );
        total = Capacity {
            read_units: total.read_units + used.read_units,
            write_units: total.write_units + used.write_units,
            calls: total.calls + used.calls,
        };
        events += projects as u64;
    }
    let unknown_before = sandman.store.capacity().total();
    let mut outcomes = Vec::new();
    for i in 0..projects {
        let body = serde_json::to_vec(&json!({"id": format!("u-{i}"), "type": "sandbox.lifecycle.paused", "timestamp": "2026-11-01T12:05:00Z", "sandbox_id": format!("foreign-{i}")})).unwrap();
        deliver(sandman, &body, "unknown", &mut outcomes).await;
    }
    let unknown = diff(sandman.store.capacity().total(), unknown_before);
    println!(
        "  {:<30} {:>5.2} RCU  {:>5.2} WCU  {:>4.1} calls per event   ({})",
        "unknown sandbox (no metadata)",
        unknown.read_units / projects as f64,
        unknown.write_units / projects as f64,
        unknown.calls as f64 / projects as f64,
        outcomes.first().map(|(_, o)| o.as_str()).unwrap_or("-")
    );
    println!(
        "  {:<30} {:>5.2} RCU  {:>5.2} WCU  {:>4.1} calls per event   ({events} events)",
        "all Sandman-sandbox events",
        total.read_units / events as f64,
        total.write_units / events as f64,
        total.calls as f64 / events as f64
    );
}

#[tokio::main]
async fn main() {
    let (iterations, projects) = (
        setting("WEBHOOK_BENCH_ITERATIONS", 20_000),
        setting("WEBHOOK_BENCH_PROJECTS", 50).max(1),
    );
    let table = TestTable::create().await;
    let config = Config::from_lookup(|name| (name == "SANDMAN_TABLE").then(|| table.name.clone())).unwrap();
    let secrets = Secrets {
        webhook_secrets: vec![Secret::new(CURRENT), Secret::new(PREVIOUS)],
        ..Secrets::default()
    };
    let store = Store::new(table.client.clone(), table.name.clone());
    let sandman = Sandman::new(store, config, secrets, Clock::manual(T0 + Duration::from_secs(120))).unwrap();
    let mut records = Vec::with_capacity(projects);
    for i in 0..projects {
        records.push(running_project(&sandman.store, i).await);
    }
    cpu(&sandman.secrets.webhook_secrets, &records, iterations);
    println!();
    capacity(&sandman, projects).await;
}
