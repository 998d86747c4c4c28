//! The operations beyond the sandbox's own: forks (of a snapshot, of the running sandbox, live),
//! busy sandboxes, budgets, account switches, outbound endpoints, and bursts of opens.

use http::{Method, StatusCode};
use serde_json::json;

use crate::actors::{As, Soak};
use crate::fleet::{ELSEWHERE, OWN_KEY_ROTATED};
use crate::model::Model;

impl Soak {
    /// Forks the project into a free fork slot of its team, in one of the three ways.
    pub async fn fork(&self, rng: &mut fastrand::Rng, source: usize) {
        let free: Vec<usize> = (self.model.regular..self.model.workable())
            .filter(|i| i % 2 == source % 2 && !self.model.project(*i).registered)
            .collect();
        if free.is_empty() {
            return;
        }
        let target = free[rng.usize(0..free.len())];
        let from = ["snapshot", "running", "live"][rng.usize(0..3)];
        let body = json!({"projectId": Model::name(target), "from": from});
        let path = format!("/v1/projects/{}/fork", Model::name(source));
        let account = self.fleet.account_of(source);
        let op = match from {
            "snapshot" => "fork-snapshot",
            "running" => "fork-running",
            _ => "fork-live",
        };
        let reply = self
            .call_as(
                rng,
                account,
                As::Member,
                op,
                Some(source),
                Method::POST,
                &path,
                Some(body),
                Model::name(target),
            )
            .await;
        let exists = match reply.map(|r| r.status) {
            Some(StatusCode::CREATED) => true,
            Some(status) if status.is_client_error() => false,
            // Given up on, or failed: it may exist. Ask.
            _ => {
                let path = format!("/v1/projects/{}", Model::name(target));
                let asked = self.call(rng, target, "get-project", Method::GET, &path, None).await;
                asked.is_none_or(|r| r.status == StatusCode::OK)
            }
        };
        if exists {
            // The fork has its source's settings: known only if the source's are, with none in flight
            // (a project once in this slot may have had others).
            let (idle, keep_last) = {
                let source = self.model.project(source);
                match source.settings_in_flight {
                    0 => (source.idle_timeout_secs, source.keep_last),
                    _ => (None, None),
                }
            };
            let mut model = self.model.project(target);
            model.registered = true;
            model.snapshots.clear();
            model.idle_timeout_secs = idle;
            model.keep_last = keep_last;
        }
    }

    /// The project's sandbox works hard for a while (E2B reports its CPU at 80%), calms down, or
    /// the frontend asks for it to be held awake for a long job.
    pub async fn busy(&self, rng: &mut fastrand::Rng, index: usize) {
        if rng.bool() {
            let seconds = rng.u64(60..900);
            return self.heartbeat(rng, index, Some(seconds)).await;
        }
        let name = Model::name(index);
        let cpu = rng.bool().then_some(80.0);
        for sandbox in self.fleet.emulator.sandboxes() {
            if sandbox.is_live() && sandbox.metadata.get("sandmanProject") == Some(&name) {
                self.fleet.emulator.set_cpu(&sandbox.sandbox_id, cpu);
            }
        }
    }

    /// The default team's admin sets, changes or removes its monthly budget.
    pub async fn budget(&self, rng: &mut fastrand::Rng, index: usize) {
        if self.fleet.account_of(index) != 0 {
            return;
        }
        let (method, body, detail) = if rng.u32(0..3) == 0 {
            (Method::DELETE, None, "none".to_owned())
        } else {
            let usd = [0.5, 1.0, 2.0, 5.0, 20.0][rng.usize(0..5)];
            (Method::PUT, Some(json!({"monthlyUsd": usd})), format!("{usd}"))
        };
        self.call_as(rng, 0, As::Admin, "budget", None, method, "/v1/budget", body, detail)
            .await;
    }

    /// The second team's admin rotates its E2B key (another key of the same account), or tries to
    /// move the team to another E2B account or back to the deployment's (refused while the team
    /// holds sandboxes or snapshots there).
    pub async fn account_switch(&self, rng: &mut fastrand::Rng, index: usize) {
        if self.fleet.account_of(index) != 1 {
            return;
        }
        let (method, body, target) = match rng.u32(0..4) {
            0 => (Method::DELETE, None, "team-local"),
            1 => (Method::PUT, Some(json!({"apiKey": ELSEWHERE.1})), ELSEWHERE.0),
            2 => (Method::PUT, Some(json!({"apiKey": OWN_KEY_ROTATED})), "team-own"),
            _ => (
                Method::PUT,
                Some(json!({"apiKey": "e2b_soak_own_key_team_0002"})),
                "team-own",
            ),
        };
        self.call_as(
            rng,
            1,
            As::Admin,
            "account-switch",
            None,
            method,
            "/v1/team/e2b",
            body,
            target.to_owned(),
        )
        .await;
    }

    /// A team's admin registers an outbound endpoint (a URL of its own on the soak's receiver),
    /// or deletes one it registered (endpoints are an admin's).
    pub async fn endpoint(&self, rng: &mut fastrand::Rng, index: usize) {
        let account = self.fleet.account_of(index);
        if rng.u32(0..3) == 0
            && let Some(id) = self.receiver.any_endpoint(account, rng)
        {
            let path = format!("/v1/webhooks/endpoints/{id}");
            self.call_as(
                rng,
                account,
                As::Admin,
                "endpoint",
                None,
                Method::DELETE,
                &path,
                None,
                id,
            )
            .await;
            return;
        }
        let url = self.receiver.new_url(account);
        let events = [
            "sandbox.running",
            "sandbox.paused",
            "sandbox.killed",
            "sandbox.resumed",
            "snapshot.created",
        ];
        let body = json!({"url": url, "events": events});
        let reply = self
            .call_as(
                rng,
                account,
                As::Admin,
                "endpoint",
                None,
                Method::POST,
                "/v1/webhooks/endpoints",
                Some(body),
                url.clone(),
            )
            .await;
        if let Some(reply) = reply.filter(|r| r.status == StatusCode::CREATED)
            && let (Some(id), Some(secret)) = (reply.json["endpointId"].as_str(), reply.json["secret"].as_str())
        {
            self.receiver.registered(account, &url, id, secret);
        }
    }

    /// One team registers `BURST` fresh projects, then opens them all at once.
    pub async fn burst(&self, rng: &mut fastrand::Rng, round: usize) {
        let projects = self.model.burst(round);
        self.ledger.fault(&format!("burst {} parallel opens", projects.len()));
        let rngs: Vec<_> = projects.iter().map(|_| (rng.fork(), rng.fork())).collect();
        let register = projects
            .iter()
            .zip(rngs)
            .map(|(index, (mut settings_rng, open_rng))| async move {
                self.settings(&mut settings_rng, *index, false).await;
                (*index, open_rng)
            });
        let registered = futures::future::join_all(register).await;
        let opens = registered.into_iter().map(|(index, mut rng)| async move {
            let path = format!("/v1/projects/{}/sandbox", Model::name(index));
            self.call(&mut rng, index, "burst-open", Method::POST, &path, None)
                .await;
        });
        futures::future::join_all(opens).await;
    }
}
