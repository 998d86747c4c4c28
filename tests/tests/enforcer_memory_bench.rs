//! Peak memory of an idle-enforcer tick that pauses 1,000 sandboxes (ignored by default: it
//! prints figures, asserts none). `scripts/bench memory` runs it:
//!
//! ```sh
//! SANDMAN_IDLE_ENFORCER_BIN=target/release/idle-enforcer \
//!   cargo test -p sandman-tests --test enforcer_memory_bench -- --ignored --nocapture
//! ```
//!
//! Two figures, each over its own fleet of 1,000 idle sessions on DynamoDB Local and the emulator
//! (each pause answered after 200 ms, as in `enforcer_bench`; a 600 s tick deadline so that all
//! 1,000 pauses happen even on a loaded machine):
//! - the function binary in a process of its own, invoked once through a stand-in Lambda Runtime
//!   API: its peak resident memory (`VmHWM`), what Lambda's memory setting must hold;
//! - the same tick in this process: the heap's high-water mark above what was live before it
//!   (the emulator's side of the calls allocates in this process too, so it is an upper bound).

#[path = "enforcer_kit/mod.rs"]
mod kit;

#[path = "heap_kit/mod.rs"]
mod heap;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use e2b_emulator::{DEFAULT_TEAM_ID, EmulatorConfig, Fault, Route, TeamAccount};
use kit::MINUTE;
use kit::fleet::{Seed, prototype, sandboxes, seed};
use sandman_local::testkit::TestStack;
use tokio::sync::mpsc;

const SESSIONS: usize = 1_000;
const PAUSE_LATENCY: Duration = Duration::from_millis(200);
/// Start-up refuses secrets under 32 bytes: the emulator's account gets a key long enough.
const E2B_KEY: &str = "e2b_memory_bench_key_0000000000000000";
const MIB: f64 = 1024.0 * 1024.0;
/// Room for all 1,000 pauses even on a loaded machine: the figure is memory, not speed.
const TICK_DEADLINE_SECS: &str = "600";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn enforcer_tick_memory() {
    match std::env::var("SANDMAN_IDLE_ENFORCER_BIN") {
        Ok(binary) => in_its_own_process(&binary).await,
        Err(_) => println!("[memory] SANDMAN_IDLE_ENFORCER_BIN is not set: the function's own process is not measured"),
    }
    in_this_process().await;
}

async fn idle_fleet() -> TestStack {
    let emulator = EmulatorConfig {
        teams: vec![TeamAccount::new(DEFAULT_TEAM_ID, E2B_KEY)],
        ..EmulatorConfig::default()
    };
    let stack = kit::stack_with(emulator, &[("TICK_DEADLINE_SECS", TICK_DEADLINE_SECS)]).await;
    let prototype = prototype(&stack).await;
    let now = stack.clock.now();
    let seeds = sandboxes(&stack, "idle", SESSIONS)
        .await
        .into_iter()
        .map(|(key, sandbox_id)| Seed {
            key,
            sandbox_id,
            idle_at: now - MINUTE,
        });
    seed(&stack, &prototype, seeds).await;
    stack.emulator.set_fault(
        Route::PauseSandbox,
        Fault {
            latency: PAUSE_LATENCY,
            ..Fault::default()
        },
    );
    stack
}

async fn in_its_own_process(binary: &str) {
    let stack = idle_fleet().await;
    let (runtime_api, mut answers) = RuntimeApi::start().await;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "sandman-idle-enforcer")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("SANDMAN_TABLE", &stack.table.name)
        .env("SANDMAN_TEMPLATES", "base,other")
        .env("E2B_API_URL", stack.emulator.base_url())
        .env("E2B_API_ALLOW_HTTP_LOOPBACK", "true")
        .env("E2B_API_KEY", E2B_KEY)
        .env("TICK_DEADLINE_SECS", TICK_DEADLINE_SECS)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the idle-enforcer binary starts");
    let pid = child.id().expect("a running child");
    let answer = tokio::select! {
        answer = answers.recv() => answer.expect("the runtime API answers"),
        status = child.wait() => panic!("the idle enforcer exited before answering: {status:?}"),
        _ = tokio::time::sleep(Duration::from_secs(900)) => panic!("no answer within 900 s"),
    };
    let elapsed = started.elapsed();
    let (hwm, rss) = (status_kib(pid, "VmHWM:"), status_kib(pid, "VmRSS:"));
    child.kill().await.ok();
    let report: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
    println!(
        "[memory {SESSIONS}] idle-enforcer in its own process ({binary}): {} {} paused in {:.1} s; \
         peak RSS (VmHWM) {:.1} MiB, RSS after the tick {:.1} MiB",
        answer.outcome,
        report["report"]["paused"],
        elapsed.as_secs_f64(),
        hwm as f64 / 1024.0,
        rss as f64 / 1024.0,
    );
}

async fn in_this_process() {
    let stack = idle_fleet().await;
    let base = heap::start();
    let report = stack.sandman.enforce_idle().await;
    let peak = heap::peak_since(base);
    println!(
        "[memory {SESSIONS}] the same tick in this process: {} paused, {} failed, {} deferred in {:.1} s; \
         heap peak {:.1} MiB above the {:.1} MiB live before it (emulator's side included)",
        report.paused,
        report.failed,
        report.deferred,
        report.duration.as_secs_f64(),
        peak as f64 / MIB,
        base as f64 / MIB,
    );
}

/// A field of /proc/<pid>/status, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .expect("the field is there")
}

struct Answer {
    outcome: &'static str,
    body: String,
}

/// A stand-in Lambda Runtime API serving one scheduled event, then holding the next poll open.
#[derive(Clone)]
struct RuntimeApi {
    served: Arc<AtomicBool>,
    answers: mpsc::UnboundedSender<Answer>,
}

impl RuntimeApi {
    async fn start() -> (String, mpsc::UnboundedReceiver<Answer>) {
        let (answers, received) = mpsc::unbounded_channel();
        let api = RuntimeApi {
            served: Arc::default(),
            answers,
        };
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(error))
            .with_state(api);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let address = listener.local_addr().expect("an address").to_string();
        tokio::spawn(async move { axum::serve(listener, router).await });
        (address, received)
    }
}

async fn next(State(api): State<RuntimeApi>) -> impl IntoResponse {
    if api.served.swap(true, Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    let deadline = time::OffsetDateTime::now_utc() + time::Duration::minutes(11);
    let deadline_ms = (deadline.unix_timestamp_nanos() / 1_000_000).to_string();
    (
        [
            ("lambda-runtime-aws-request-id", "tick-1".to_owned()),
            ("lambda-runtime-deadline-ms", deadline_ms),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:000000000000:function:sandman-idle-enforcer".to_owned(),
            ),
            ("content-type", "application/json".to_owned()),
        ],
        r#"{"version":"0","id":"tick-1","detail-type":"Scheduled Event","source":"aws.events","detail":{}}"#,
    )
}

async fn response(State(api): State<RuntimeApi>, body: String) -> impl IntoResponse {
    let _ = api.answers.send(Answer {
        outcome: "answered",
        body,
    });
    http::StatusCode::ACCEPTED
}

async fn error(State(api): State<RuntimeApi>, body: String) -> impl IntoResponse {
    let _ = api.answers.send(Answer {
        outcome: "FAILED",
        body,
    });
    http::StatusCode::ACCEPTED
}
