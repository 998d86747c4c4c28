//! The lifecycle end to end, through the HTTP API of a running local stack: register a project,
//! open its sandbox, heartbeat, go idle and be paused by the enforcer (the webhook confirms),
//! wake, snapshot, kill with auto-save, reopen from the snapshot, prune; then a busy sandbox the
//! enforcer does not pause, an active one handed off before E2B's (shortened) session cap, a fork,
//! a project paused too long archived and reopened, and a budget reached. `make demo` prints it;
//! the end-to-end test runs the very same steps and fails on any unexpected answer.

use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::Method;
use serde_json::{Value, json};

use crate::stack::LocalStack;

/// How the walkthrough lets time pass: a real sleep in the demo, a clock moved by hand in tests.
pub type Wait<'a> = Box<dyn Fn(Duration) -> BoxFuture<'a, ()> + Send + Sync + 'a>;

pub const PROJECT: &str = "demo";
pub const BUSY_PROJECT: &str = "demo-busy";
pub const AGENT_PROJECT: &str = "demo-agent";
const IDLE: Duration = Duration::from_secs(60);
/// The walkthrough stack's emulated cap on one continuous run, and Sandman's margin before it.
pub const SESSION_CAP: Duration = Duration::from_secs(120);
pub const SESSION_CAP_MARGIN: Duration = Duration::from_secs(30);
pub const FORK: &str = "demo-fork";
pub const ARCHIVED: &str = "archived";
const ARCHIVE_AFTER: Duration = Duration::from_secs(60);

pub struct Walkthrough<'a> {
    stack: &'a LocalStack,
    http: reqwest::Client,
    token: String,
    wait: Wait<'a>,
    say: Box<dyn Fn(&str) + Send + Sync + 'a>,
}

impl<'a> Walkthrough<'a> {
    pub fn new(stack: &'a LocalStack, token: String, wait: Wait<'a>, say: impl Fn(&str) + Send + Sync + 'a) -> Self {
        Self {
            stack,
            http: reqwest::Client::new(),
            token,
            wait,
            say: Box::new(say),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<(u16, Value), String> {
        self.call_on(PROJECT, method, path, body).await
    }

    async fn call_on(
        &self,
        project: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        self.call_v1(method, &format!("/projects/{project}{path}"), body).await
    }

    /// `path` under `/v1`.
    async fn call_v1(&self, method: Method, path: &str, body: Option<Value>) -> Result<(u16, Value), String> {
        let url = format!("{}/v1{path}", self.stack.api_url);
        let mut request = self.http.request(method.clone(), &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| format!("{method} {url}: {e}: {text}"))?
        };
        Ok((status, value))
    }

    async fn expect(&self, method: Method, path: &str, body: Option<Value>, statuses: &[u16]) -> Result<Value, String> {
        self.expect_on(PROJECT, method, path, body, statuses).await
    }

    async fn expect_on(
        &self,
        project: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        statuses: &[u16],
    ) -> Result<Value, String> {
        let (status, value) = self.call_on(project, method.clone(), path, body).await?;
        if statuses.contains(&status) {
            Ok(value)
        } else {
            Err(format!("{method} {path}: expected {statuses:?}, got {status}: {value}"))
        }
    }

    async fn expect_v1(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        statuses: &[u16],
    ) -> Result<Value, String> {
        let (status, value) = self.call_v1(method.clone(), path, body).await?;
        if statuses.contains(&status) {
            Ok(value)
        } else {
            Err(format!("{method} {path}: expected {statuses:?}, got {status}: {value}"))
        }
    }

    fn check(&self, ok: bool, what: &str, got: &Value) -> Result<(), String> {
        if ok { Ok(()) } else { Err(format!("{what}; got {got}")) }
    }

    async fn state(&self) -> Result<Value, String> {
        self.expect(Method::GET, "/sandbox", None, &[200]).await
    }

    async fn tick(&self, binary: &str) -> Result<Value, String> {
        self.stack
            .run_job(
                binary,
                json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
            )
            .await
            .map_err(|e| e.to_string())
    }

    async fn settle_webhooks(&self) {
        if let Some(emulator) = &self.stack.emulator {
            emulator.settle_webhooks().await;
        }
    }

    pub async fn run(&self) -> Result<(), String> {
        let say = &self.say;
        let project = json!({"templateId": "base", "idleTimeoutSeconds": IDLE.as_secs(), "retention": {"keepLast": 1}});
        self.expect(Method::PUT, "", Some(project), &[200, 201]).await?;
        say("1. registered project `demo` (template base, idle after 60 s, keep 1 snapshot)");

        let opened = self.expect(Method::POST, "/sandbox", None, &[200]).await?;
        self.check(
            opened["path"] == "created",
            "a new project's sandbox is created from its template",
            &opened,
        )?;
        let sandbox = opened["sandbox"]["sandboxId"].as_str().unwrap_or_default().to_string();
        say(&format!("2. opened the workspace: sandbox {sandbox} created, RUNNING"));

        let beat = self.expect(Method::POST, "/sandbox/activity", None, &[200]).await?;
        let status = self.state().await?;
        self.check(
            status["pollAfterMs"] == 30_000,
            "a running sandbox is polled every 30 s",
            &status,
        )?;
        say(&format!(
            "3. heartbeat: {}; status says poll again in 30 s, pause at {}",
            beat["outcome"], status["pauseAt"]
        ));

        (self.wait)(IDLE + Duration::from_secs(1)).await;
        let report = self.tick("idle-enforcer").await?;
        let status = self.state().await?;
        self.check(
            status["state"] == "PAUSED" && status["pollAfterMs"].is_null(),
            "the idle enforcer pauses an idle sandbox",
            &status,
        )?;
        self.settle_webhooks().await;
        let confirmed = match &self.stack.emulator {
            Some(emulator) => {
                let accepted = emulator
                    .deliveries()
                    .iter()
                    .filter(|d| {
                        d.sandbox_id == sandbox && d.event_type.ends_with("paused") && d.status.is_some_and(|s| s < 300)
                    })
                    .count();
                self.check(
                    accepted == 1,
                    "E2B's `paused` webhook is delivered once and accepted",
                    &json!({"accepted": accepted}),
                )?;
                "E2B's `paused` webhook delivered once and accepted"
            }
            None => "E2B's `paused` webhook goes to the deployed receiver",
        };
        let tick = &report["report"];
        self.check(tick["paused"] == 1, "the enforcer's tick reports the pause", &report)?;
        say(&format!(
            "4. idle for 60 s: the enforcer's tick paused it (1 of {} idle); PAUSED, {confirmed}",
            tick["candidates"]
        ));

        let woke = self.expect(Method::POST, "/sandbox/activity", None, &[200]).await?;
        self.check(woke["outcome"] == "woke", "activity wakes a paused sandbox", &woke)?;
        self.check(
            self.state().await?["state"] == "RUNNING",
            "the woken sandbox runs",
            &woke,
        )?;
        say("5. activity on the paused sandbox woke it: RUNNING again");

        let manual = self
            .expect(
                Method::POST,
                "/snapshots",
                Some(json!({"description": "before the refactor"})),
                &[201],
            )
            .await?;
        say(&format!("6. saved snapshot {}", manual["snapshotId"]));

        let killed = self
            .expect(Method::DELETE, "/sandbox?snapshot=true", None, &[200])
            .await?;
        let auto = killed["snapshot"]["snapshotId"].clone();
        self.check(auto.is_string(), "a kill with snapshot=true saves one first", &killed)?;
        say(&format!("7. killed the sandbox, auto-saved as snapshot {auto}"));

        let reopened = self.expect(Method::POST, "/sandbox", None, &[200]).await?;
        self.check(
            reopened["path"] == "restored" && reopened["restoredFrom"] == auto,
            "reopening restores the latest snapshot",
            &reopened,
        )?;
        say(&format!(
            "8. reopened: restored from {auto} into sandbox {}",
            reopened["sandbox"]["sandboxId"]
        ));

        let pruned = self.tick("snapshot-pruner").await?;
        let left = self.expect(Method::GET, "/snapshots", None, &[200]).await?;
        let ids: Vec<&Value> = left["items"]
            .as_array()
            .map(|a| a.iter().map(|s| &s["snapshotId"]).collect())
            .unwrap_or_default();
        self.check(
            ids == vec![&auto],
            "retention keeps the newest snapshot, the one the sandbox runs from",
            &left,
        )?;
        self.check(
            pruned["snapshotsDeleted"] == 1,
            "the pruner's tick reports the deletion",
            &pruned,
        )?;
        say(&format!(
            "9. the pruner's tick deleted 1 snapshot (the older one) and kept {auto}"
        ));

        let log = self.expect(Method::GET, "/events", None, &[200]).await?;
        let lines = log["items"].as_array().map_or(0, Vec::len);
        say(&format!(
            "10. lifecycle log: {lines} transitions, newest first, each with actor and cause"
        ));
        self.busy_and_handoff().await?;
        self.policies().await
    }

    /// A busy sandbox the enforcer does not pause, and an active one handed off at the cap.
    async fn busy_and_handoff(&self) -> Result<(), String> {
        let say = &self.say;
        let Some(emulator) = &self.stack.emulator else {
            say(
                "11-13. busy-aware idle and the session-cap handoff need the emulator (a CPU to set, a short cap): skipped",
            );
            return Ok(());
        };
        let busy = json!({"templateId": "base", "idleTimeoutSeconds": IDLE.as_secs(), "busyCpuPercent": 50});
        self.expect_on(BUSY_PROJECT, Method::PUT, "", Some(busy), &[200, 201])
            .await?;
        let agent = json!({"templateId": "base", "idleTimeoutSeconds": IDLE.as_secs()});
        self.expect_on(AGENT_PROJECT, Method::PUT, "", Some(agent), &[200, 201])
            .await?;
        let busy = self
            .expect_on(BUSY_PROJECT, Method::POST, "/sandbox", None, &[200])
            .await?;
        let agent = self
            .expect_on(AGENT_PROJECT, Method::POST, "/sandbox", None, &[200])
            .await?;
        let busy_sandbox = busy["sandbox"]["sandboxId"].as_str().unwrap_or_default().to_string();
        let agent_sandbox = agent["sandbox"]["sandboxId"].as_str().unwrap_or_default().to_string();
        emulator.set_cpu(&busy_sandbox, Some(80.0));
        say(&format!(
            "11. two more projects: {BUSY_PROJECT} (busy above 50% CPU; its sandbox works at 80%) and {AGENT_PROJECT} (kept active), in an E2B whose session cap is {} s",
            SESSION_CAP.as_secs()
        ));

        (self.wait)(IDLE + Duration::from_secs(1)).await;
        self.expect_on(AGENT_PROJECT, Method::POST, "/sandbox/activity", None, &[200])
            .await?;
        let report = self.tick("idle-enforcer").await?;
        let tick = &report["report"];
        self.check(
            tick["busyDeferred"] == 1,
            "the busy sandbox's pause is deferred",
            &report,
        )?;
        let status = self
            .expect_on(BUSY_PROJECT, Method::GET, "/sandbox", None, &[200])
            .await?;
        self.check(status["state"] == "RUNNING", "a busy sandbox is not paused", &status)?;
        let cause = "deferred: busy (cpu 80%)";
        self.check(
            self.causes(BUSY_PROJECT).await?.iter().any(|c| c == cause),
            "the lifecycle log records the deferral",
            &status,
        )?;
        say(&format!(
            "12. idle for 60 s but busy: the enforcer read its CPU ({} metrics call) and logged \"{cause}\"; still RUNNING ({} paused as idle)",
            tick["metricsCalls"], tick["paused"]
        ));

        (self.wait)(SESSION_CAP - SESSION_CAP_MARGIN - IDLE).await;
        self.expect_on(AGENT_PROJECT, Method::POST, "/sandbox/activity", None, &[200])
            .await?;
        let report = self.tick("idle-enforcer").await?;
        // demo-busy too: its deferral ran up to its own handoff deadline, which comes due with it.
        let logs = json!({"tick": report, "agent": self.causes(AGENT_PROJECT).await?, "busy": self.causes(BUSY_PROJECT).await?});
        self.check(
            report["report"]["handoffs"] == 2,
            "the active and the busy sandbox are handed off",
            &logs,
        )?;
        let status = self
            .expect_on(AGENT_PROJECT, Method::GET, "/sandbox", None, &[200])
            .await?;
        let kept = emulator
            .sandbox(&agent_sandbox)
            .is_some_and(|s| s.kill_reason.is_none());
        self.check(
            status["state"] == "RUNNING" && status["sandboxId"] == agent_sandbox.as_str() && kept,
            "the handoff keeps the same sandbox running",
            &status,
        )?;
        self.check(
            self.causes(AGENT_PROJECT)
                .await?
                .iter()
                .any(|c| c == "session cap handoff"),
            "the lifecycle log says why",
            &status,
        )?;
        say(&format!(
            "13. {AGENT_PROJECT}, active {} s into a {} s cap: paused and resumed at once (same sandbox, memory kept; a short RESUMING), logged \"session cap handoff\"; {BUSY_PROJECT}, still busy, handed off with it",
            (SESSION_CAP - SESSION_CAP_MARGIN).as_secs(),
            SESSION_CAP.as_secs()
        ));
        Ok(())
    }

    /// Fork, inactivity tiers and budgets (issue 15).
    async fn policies(&self) -> Result<(), String> {
        let say = &self.say;
        let forked = self
            .expect(Method::POST, "/fork", Some(json!({"projectId": FORK})), &[201])
            .await?;
        let opened = self
            .expect_v1(Method::POST, &format!("/projects/{FORK}/sandbox"), None, &[200])
            .await?;
        self.check(
            opened["path"] == "restored" && opened["restoredFrom"] == forked["forkOf"]["snapshotId"],
            "a fork's first open restores the source's snapshot",
            &opened,
        )?;
        say(&format!(
            "14. forked `demo` into `{FORK}`: its first open restored {} into a sandbox of its own",
            opened["restoredFrom"]
        ));

        let archived = format!("/projects/{ARCHIVED}");
        let settings = json!({
            "templateId": "base",
            "idleTimeoutSeconds": IDLE.as_secs(),
            "inactivity": {"archiveAfterSeconds": ARCHIVE_AFTER.as_secs()}
        });
        self.expect_v1(Method::PUT, &archived, Some(settings), &[200]).await?;
        self.expect_v1(Method::POST, &format!("{archived}/sandbox"), None, &[200])
            .await?;
        self.expect_v1(Method::POST, &format!("{archived}/sandbox/pause"), None, &[200])
            .await?;
        (self.wait)(ARCHIVE_AFTER + Duration::from_secs(1)).await;
        self.tick("snapshot-pruner").await?;
        let status = self
            .expect_v1(Method::GET, &format!("{archived}/sandbox"), None, &[200])
            .await?;
        self.check(
            status["state"] == "KILLED",
            "a sandbox paused past archiveAfter is archived",
            &status,
        )?;
        let reopened = self
            .expect_v1(Method::POST, &format!("{archived}/sandbox"), None, &[200])
            .await?;
        self.check(
            reopened["path"] == "restored",
            "an archived project reopens from its snapshot",
            &reopened,
        )?;
        say(&format!(
            "15. `{ARCHIVED}` paused for {} s: the pruner archived it (snapshot, then kill); reopened from {}",
            ARCHIVE_AFTER.as_secs(),
            reopened["restoredFrom"]
        ));

        let budget = self
            .expect_v1(Method::PUT, "/budget", Some(json!({"monthlyUsd": 0.001})), &[200])
            .await?;
        self.check(
            budget["reached"] == true,
            "a budget below this month's usage is reached at once",
            &budget,
        )?;
        let tick = self.tick("idle-enforcer").await?;
        let (status, refused) = self.call(Method::POST, "/sandbox", None).await?;
        self.check(
            status == 402 && refused["error"]["code"] == "budget_exceeded",
            "opens are refused with 402 once the budget is reached",
            &refused,
        )?;
        self.check(
            self.state().await?["state"] == "PAUSED",
            "the team's sandboxes are paused",
            &tick,
        )?;
        say(&format!(
            "16. budget ${} reached (${:.4} used this month): the enforcer paused {} running sandboxes, opens answer 402",
            budget["monthlyUsd"],
            budget["spentUsd"].as_f64().unwrap_or_default(),
            tick["budgets"]["paused"]
        ));
        self.expect_v1(Method::DELETE, "/budget", None, &[204]).await?;
        Ok(())
    }

    async fn causes(&self, project: &str) -> Result<Vec<String>, String> {
        let log = self.expect_on(project, Method::GET, "/events", None, &[200]).await?;
        Ok(log["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["cause"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }
}
