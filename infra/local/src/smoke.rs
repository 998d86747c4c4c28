//! `sandman-local smoke`: a stack checked end to end through its HTTP API, deployed or local,
//! each step printed. It proves the loop a deployment lives by, judged by the API's answers:
//! 1. a request without a token is refused;
//! 2. (with `--cors-origin`) a browser on that origin may call the API and read ETag and Retry-After;
//! 3. a throwaway project opens a sandbox in E2B, reaches RUNNING, and is paused;
//! 4. E2B's `paused` webhook reaches the webhook URL, passes its signature check and is recorded
//!    (the run's usage appears), so E2B can reach the stack and the signing secrets match;
//! 5. (unless `--no-schedules`) a second project left idle is paused by the idle enforcer: its
//!    schedule runs, with its role, its secrets and E2B; with `--stack` the reconciler and the
//!    pruner are also invoked as their schedules invoke them (`stack::ScheduledChecks`);
//!
//! and deletes both projects (killing their sandboxes) whatever happened.

use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use sandman::config::Config;
use sandman::domain::TeamId;
use sandman::secrets::Secret;

pub use crate::deployed::aws_cli::{AwsCli, ScheduledChecks};

pub struct Smoke {
    /// The API's base URL (the stack's `ApiUrl` output), with or without a trailing `/`.
    pub api_url: String,
    pub token: String,
    /// The throwaway projects' id (`Smoke::throwaway_project()`); the idle one adds `-idle`.
    pub project: String,
    pub template: String,
    /// How long to wait for the sandbox to be RUNNING.
    pub timeout: Duration,
    /// How long to wait for E2B's webhook (E2B retries a failed delivery).
    pub webhook_timeout: Duration,
    /// A browser origin the stack allows (its `CorsAllowedOrigins`): the preflight is checked.
    pub cors_origin: Option<String>,
    /// How long to wait for the idle enforcer to pause an idle project; `None` skips the check.
    pub schedule_timeout: Option<Duration>,
    /// With a deployed stack's name: the scheduled functions invoked through the AWS CLI.
    pub scheduled: Option<ScheduledChecks>,
}

/// The claims a minted token carries; the API checks issuer and audience when it is configured with them.
pub struct Minting {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub team_claim: Option<String>,
    pub team: String,
}

impl Minting {
    /// A 15-minute HS256 token for the deployment whose `jwtHs256Secret` is `secret`.
    pub fn token(&self, secret: &Secret) -> Result<String, String> {
        let auth = Config::from_lookup(|name| match name {
            "SANDMAN_TABLE" => Some("unused".into()),
            "JWT_ISSUER" => self.issuer.clone(),
            "JWT_AUDIENCE" => self.audience.clone(),
            "JWT_TEAM_CLAIM" => self.team_claim.clone(),
            _ => None,
        })
        .map_err(|e| e.to_string())?
        .auth;
        let team = TeamId::parse(self.team.as_str()).map_err(|e| e.to_string())?;
        sandman::auth::mint_dev_token(&auth, secret, &team, "sandman-smoke", Duration::from_secs(900))
            .map_err(|e| e.to_string())
    }
}

/// Idle timeout of the project the enforcer must pause: the API's minimum.
const IDLE_SECONDS: u64 = 60;

impl Smoke {
    pub fn throwaway_project() -> String {
        format!("smoke-{}", ulid::Ulid::new().to_string().to_lowercase())
    }

    fn idle_project(&self) -> String {
        format!("{}-idle", self.project)
    }

    pub async fn run(&self, say: impl Fn(&str)) -> Result<(), String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let client = Client {
            http,
            base: self.api_url.trim_end_matches('/').to_owned(),
            token: &self.token,
        };
        let result = self.steps(&client, &say).await;
        // Clean up whatever happened: deleting kills the sandbox and drops the project.
        let mut cleanup = Ok(());
        let mut projects = vec![self.project.clone()];
        if self.schedule_timeout.is_some() {
            projects.push(self.idle_project());
        }
        for project in projects {
            match client
                .expect(Method::DELETE, &format!("/v1/projects/{project}"), None, &[204, 404])
                .await
            {
                Ok(_) => say(&format!("deleted project {project} (its sandbox is killed)")),
                Err(err) => {
                    say(&format!("could not delete project {project}: {err}"));
                    cleanup = Err(err);
                }
            }
        }
        result.and(cleanup)
    }

    async fn steps(&self, client: &Client<'_>, say: &impl Fn(&str)) -> Result<(), String> {
        let project = format!("/v1/projects/{}", self.project);
        let (status, _, body) = client.send(Method::GET, "/v1/projects", None, false, &[]).await?;
        if status != 401 {
            return Err(format!("a request without a token answered {status}, not 401: {body}"));
        }
        say("1. a request without a token is refused (401)");
        if let Some(origin) = &self.cors_origin {
            self.preflight(client, &project, origin).await?;
            say(&format!(
                "2. CORS: {origin} may call the API with a token and If-None-Match, and read ETag and Retry-After"
            ));
        }

        let settings = json!({"templateId": self.template, "idleTimeoutSeconds": 300});
        client
            .expect(Method::PUT, &project, Some(settings), &[200, 201])
            .await?;
        let idle = self.idle_project();
        if self.schedule_timeout.is_some() {
            let settings = json!({"templateId": self.template, "idleTimeoutSeconds": IDLE_SECONDS});
            client
                .expect(
                    Method::PUT,
                    &format!("/v1/projects/{idle}"),
                    Some(settings),
                    &[200, 201],
                )
                .await?;
            client
                .expect(
                    Method::POST,
                    &format!("/v1/projects/{idle}/sandbox"),
                    None,
                    &[200, 201, 202],
                )
                .await?;
        }
        let opened = client
            .expect(Method::POST, &format!("{project}/sandbox"), None, &[200, 201, 202])
            .await?;
        say(&format!(
            "3. registered project {} (template {}) and opened its sandbox {} ({})",
            self.project,
            self.template,
            opened["sandbox"]["sandboxId"].as_str().unwrap_or("id pending"),
            opened["path"].as_str().unwrap_or("?")
        ));
        let started = Instant::now();
        self.wait_for(client, &project, "RUNNING", self.timeout).await?;
        say(&format!(
            "4. status: RUNNING after {:.1} s",
            started.elapsed().as_secs_f64()
        ));

        let paused = client
            .expect(Method::POST, &format!("{project}/sandbox/pause"), None, &[200])
            .await?;
        self.wait_for(client, &project, "PAUSED", Duration::ZERO).await?;
        say(&format!("5. paused it: {}; status PAUSED", paused["outcome"]));

        let started = Instant::now();
        let seconds = self.webhook_usage(client, &project).await?;
        say(&format!(
            "6. E2B's paused webhook reached the webhook URL, signed with the stack's secret, after {:.1} s: {seconds:.0} s of run recorded",
            started.elapsed().as_secs_f64()
        ));

        if let Some(timeout) = self.schedule_timeout {
            let started = Instant::now();
            let by = self
                .paused_by_enforcer(client, &format!("/v1/projects/{idle}"), timeout)
                .await?;
            say(&format!(
                "7. schedules: the idle enforcer paused {idle}, idle for {IDLE_SECONDS} s ({by}), {:.0} s after the check began",
                started.elapsed().as_secs_f64()
            ));
        }
        if let Some(scheduled) = &self.scheduled {
            for line in scheduled.run()? {
                say(&format!("8. schedules: {line}"));
            }
        }
        Ok(())
    }

    /// The browser's preflight for a status poll, then the poll's own CORS headers.
    async fn preflight(&self, client: &Client<'_>, project: &str, origin: &str) -> Result<(), String> {
        let path = format!("{project}/sandbox");
        let asked = [
            ("origin", origin),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization,if-none-match"),
        ];
        let (status, headers, _) = client.send(Method::OPTIONS, &path, None, false, &asked).await?;
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_ascii_lowercase()
        };
        let allowed_origin = header("access-control-allow-origin");
        if !(200..300).contains(&status) || (allowed_origin != origin && allowed_origin != "*") {
            return Err(format!(
                "the CORS preflight from {origin} answered {status} with access-control-allow-origin {allowed_origin:?}: add it to CorsAllowedOrigins"
            ));
        }
        let allowed = header("access-control-allow-headers");
        for wanted in ["authorization", "if-none-match"] {
            if !allowed.split(',').any(|h| h.trim() == wanted) {
                return Err(format!(
                    "the CORS preflight does not allow the header {wanted} ({allowed:?})"
                ));
            }
        }
        let (_, headers, _) = client
            .send(Method::GET, &path, None, true, &[("origin", origin)])
            .await?;
        let exposed = headers
            .get("access-control-expose-headers")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        for wanted in ["etag", "retry-after"] {
            if !exposed.split(',').any(|h| h.trim() == wanted) {
                return Err(format!("a browser cannot read {wanted}: the API exposes {exposed:?}"));
            }
        }
        Ok(())
    }

    /// Polls status, as the API asks, until `state` (at once when `timeout` is zero).
    async fn wait_for(
        &self,
        client: &Client<'_>,
        project: &str,
        state: &str,
        timeout: Duration,
    ) -> Result<Value, String> {
        let started = Instant::now();
        loop {
            let status = client
                .expect(Method::GET, &format!("{project}/sandbox"), None, &[200])
                .await?;
            let now = status["state"].as_str().unwrap_or("none");
            if now == state {
                return Ok(status);
            }
            if started.elapsed() >= timeout {
                return Err(format!("{project} was not {state} after {timeout:?}: {status}"));
            }
            let poll = status["pollAfterMs"].as_u64().unwrap_or(1000).clamp(250, 5000);
            tokio::time::sleep(Duration::from_millis(poll)).await;
        }
    }

    /// The run seconds E2B's `paused` webhook reported: the usage only a webhook writes.
    async fn webhook_usage(&self, client: &Client<'_>, project: &str) -> Result<f64, String> {
        let started = Instant::now();
        loop {
            let usage = client
                .expect(Method::GET, &format!("{project}/usage"), None, &[200])
                .await?;
            let seconds = usage["used"]["runSeconds"].as_f64().unwrap_or_default();
            if seconds > 0.0 {
                return Ok(seconds);
            }
            if started.elapsed() > self.webhook_timeout {
                return Err(format!(
                    "E2B's paused webhook was not recorded within {:?}: check that the webhook is registered for this \
                     account (sandman-local register-account-webhook), that its URL is the stack's WebhookUrl, and the \
                     webhook function's log for rejected signatures",
                    self.webhook_timeout
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits until the project is PAUSED by the idle enforcer (its lifecycle log says who paused it).
    async fn paused_by_enforcer(
        &self,
        client: &Client<'_>,
        project: &str,
        timeout: Duration,
    ) -> Result<String, String> {
        let started = Instant::now();
        loop {
            let events = client
                .expect(Method::GET, &format!("{project}/events"), None, &[200])
                .await?;
            let pauses: Vec<&Value> = events["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["to"] == "PAUSING" || e["to"] == "PAUSED")
                .collect();
            if let Some(pause) = pauses.iter().find(|e| e["actor"] == "idle-enforcer") {
                return Ok(pause["cause"].as_str().unwrap_or("paused").to_owned());
            }
            if let Some(pause) = pauses.first() {
                return Err(format!(
                    "the idle project was paused, but not by the idle enforcer: {pause}"
                ));
            }
            if started.elapsed() > timeout {
                return Err(format!(
                    "the idle enforcer did not pause a project idle for {IDLE_SECONDS} s within {timeout:?}: is its \
                     schedule enabled, and does its log show ticks?"
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

struct Client<'a> {
    http: reqwest::Client,
    base: String,
    token: &'a str,
}

impl Client<'_> {
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        authorized: bool,
        headers: &[(&str, &str)],
    ) -> Result<(u16, HeaderMap, String), String> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url);
        if authorized {
            request = request.bearer_auth(self.token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        Ok((status, headers, response.text().await.unwrap_or_default()))
    }

    async fn expect(&self, method: Method, path: &str, body: Option<Value>, statuses: &[u16]) -> Result<Value, String> {
        let (status, _, text) = self.send(method.clone(), path, body, true, &[]).await?;
        if !statuses.contains(&status) {
            return Err(format!(
                "{method} {}{path}: expected {statuses:?}, got {status}: {text}",
                self.base
            ));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}
