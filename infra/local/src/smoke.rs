//! `sandman-local smoke`: a stack checked end to end through its HTTP API, deployed or local.
//! Registers a throwaway project, opens its sandbox, reads status until RUNNING, pauses it, and
//! deletes the project (also when a step failed), printing each step. What it proves: the API's
//! authentication, the table, the E2B key and the path from the API to E2B all work.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use sandman::config::Config;
use sandman::domain::TeamId;
use sandman::secrets::Secret;

pub struct Smoke {
    /// The API's base URL (the stack's `ApiUrl` output), with or without a trailing `/`.
    pub api_url: String,
    pub token: String,
    /// The throwaway project's id (`Smoke::throwaway_project()`).
    pub project: String,
    pub template: String,
    /// How long to wait for the sandbox to be RUNNING.
    pub timeout: Duration,
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

impl Smoke {
    pub fn throwaway_project() -> String {
        format!("smoke-{}", ulid::Ulid::new().to_string().to_lowercase())
    }

    pub async fn run(&self, say: impl Fn(&str)) -> Result<(), String> {
        let project = &self.project;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        let client = Client {
            http,
            base: format!("{}/v1/projects/{project}", self.api_url.trim_end_matches('/')),
            token: &self.token,
        };
        let result = self.steps(&client, project, &say).await;
        // Clean up whatever happened: deleting kills the sandbox and drops the project.
        let cleanup = client.expect(Method::DELETE, "", None, &[204, 404]).await;
        match &cleanup {
            Ok(_) => say(&format!("6. deleted project {project} (its sandbox is killed)")),
            Err(err) => say(&format!("6. could not delete project {project}: {err}")),
        }
        result.and(cleanup.map(drop))
    }

    async fn steps(&self, client: &Client<'_>, project: &str, say: &impl Fn(&str)) -> Result<(), String> {
        let settings = json!({"templateId": self.template, "idleTimeoutSeconds": 300});
        client.expect(Method::PUT, "", Some(settings), &[200, 201]).await?;
        say(&format!("1. registered project {project} (template {})", self.template));

        let opened = client.expect(Method::POST, "/sandbox", None, &[200, 201, 202]).await?;
        say(&format!(
            "2. opened its sandbox: {} ({})",
            opened["sandbox"]["sandboxId"].as_str().unwrap_or("id pending"),
            opened["path"].as_str().unwrap_or("?")
        ));

        let started = Instant::now();
        loop {
            let status = client.expect(Method::GET, "/sandbox", None, &[200]).await?;
            let state = status["state"].as_str().unwrap_or("none").to_owned();
            if state == "RUNNING" {
                say(&format!(
                    "3. status: RUNNING after {:.1} s",
                    started.elapsed().as_secs_f64()
                ));
                break;
            }
            if started.elapsed() > self.timeout {
                return Err(format!(
                    "the sandbox was not RUNNING after {:?} (state {state})",
                    self.timeout
                ));
            }
            let poll = status["pollAfterMs"].as_u64().unwrap_or(1000).clamp(250, 5000);
            tokio::time::sleep(Duration::from_millis(poll)).await;
        }

        let paused = client.expect(Method::POST, "/sandbox/pause", None, &[200]).await?;
        say(&format!("4. paused it: {}", paused["outcome"]));
        let status = client.expect(Method::GET, "/sandbox", None, &[200]).await?;
        if status["state"] != "PAUSED" {
            return Err(format!("after the pause, status says {status}"));
        }
        say("5. status: PAUSED");
        Ok(())
    }
}

struct Client<'a> {
    http: reqwest::Client,
    base: String,
    token: &'a str,
}

impl Client<'_> {
    async fn expect(&self, method: Method, path: &str, body: Option<Value>, statuses: &[u16]) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url).bearer_auth(self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if !statuses.contains(&status) {
            return Err(format!("{method} {url}: expected {statuses:?}, got {status}: {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}
