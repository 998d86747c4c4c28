//! Injected misbehaviour: per-route API faults and webhook delivery faults.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The emulated API's operations, as tests name them for faults and call records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Route {
    CreateSandbox,
    GetSandbox,
    ListSandboxes,
    PauseSandbox,
    ConnectSandbox,
    ResumeSandbox,
    /// `POST /sandboxes/{id}/fork`.
    ForkSandbox,
    SetTimeout,
    RefreshSandbox,
    KillSandbox,
    CreateSnapshot,
    ListSnapshots,
    DeleteSnapshot,
    SandboxMetrics,
    /// `GET /sandboxes/metrics?sandbox_ids=…`: the latest metrics of up to 100 sandboxes.
    BatchMetrics,
    SandboxEvents,
    Webhooks,
    /// `/secrets` and `/secrets/{id}`, every method.
    Secrets,
    /// `PUT /sandboxes/{id}/network`.
    SetNetwork,
    Unknown,
}

impl Route {
    /// Maps a matched route template (e.g. `/sandboxes/{id}/pause`) to the operation.
    pub(crate) fn classify(method: &Method, matched: Option<&str>) -> Route {
        let Some(path) = matched else {
            return Route::Unknown;
        };
        let path = path.strip_prefix("/v2").unwrap_or(path);
        match (method.as_str(), path) {
            ("POST", "/sandboxes") => Route::CreateSandbox,
            ("GET", "/sandboxes") => Route::ListSandboxes,
            ("GET", "/sandboxes/metrics") => Route::BatchMetrics,
            ("GET", "/sandboxes/{id}") => Route::GetSandbox,
            ("DELETE", "/sandboxes/{id}") => Route::KillSandbox,
            ("POST", "/sandboxes/{id}/pause") => Route::PauseSandbox,
            ("POST", "/sandboxes/{id}/connect") => Route::ConnectSandbox,
            ("POST", "/sandboxes/{id}/resume") => Route::ResumeSandbox,
            ("POST", "/sandboxes/{id}/fork") => Route::ForkSandbox,
            ("POST", "/sandboxes/{id}/timeout") => Route::SetTimeout,
            ("POST", "/sandboxes/{id}/refreshes") => Route::RefreshSandbox,
            ("POST", "/sandboxes/{id}/snapshots") => Route::CreateSnapshot,
            ("GET", "/sandboxes/{id}/metrics") => Route::SandboxMetrics,
            ("GET", "/snapshots") => Route::ListSnapshots,
            ("DELETE", "/templates/{id}") => Route::DeleteSnapshot,
            ("PUT", "/sandboxes/{id}/network") => Route::SetNetwork,
            (_, p) if p.starts_with("/secrets") => Route::Secrets,
            (_, p) if p.starts_with("/events/webhooks") => Route::Webhooks,
            (_, p) if p.starts_with("/events/sandboxes") => Route::SandboxEvents,
            _ => Route::Unknown,
        }
    }
}

/// How one route misbehaves. Counters (`rate_limit_burst`, `fail_next`) count down per call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Fault {
    /// Probability (0..=1) that a call fails with `error_status`.
    pub error_rate: f64,
    pub error_status: u16,
    /// The next N calls get 429 with `Retry-After`.
    pub rate_limit_burst: u32,
    /// The next N calls (after any rate-limit burst) get `error_status`.
    pub fail_next: u32,
    /// Added before every call is answered.
    #[serde(with = "millis")]
    pub latency: Duration,
    /// The next N calls (after any burst and `fail_next`) take effect, then answer `error_status`:
    /// E2B's ambiguous failure, where a 5xx does not mean nothing happened.
    pub applied_then_fail_next: u32,
    /// The next N calls take effect, then hang for `hang_for` before answering: a client whose
    /// deadline is shorter sees a timeout for a call that did happen.
    pub applied_then_hang_next: u32,
    #[serde(with = "millis")]
    pub hang_for: Duration,
    /// The next N calls are taken in, then done only after `apply_after` (in a task of their own,
    /// whether or not the caller still waits): work E2B does after a client with a shorter
    /// deadline gave up on it, e.g. a create that lands after the caller rolled back.
    pub apply_late_next: u32,
    #[serde(with = "millis")]
    pub apply_after: Duration,
    /// The next N fork calls answer 201 with each fork's `error` (status `error_status`) in place
    /// of its sandbox, and start nothing: E2B's per-fork failure.
    pub fork_error_next: u32,
}

impl Default for Fault {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            error_status: 500,
            rate_limit_burst: 0,
            fail_next: 0,
            latency: Duration::ZERO,
            applied_then_fail_next: 0,
            applied_then_hang_next: 0,
            hang_for: Duration::ZERO,
            apply_late_next: 0,
            apply_after: Duration::ZERO,
            fork_error_next: 0,
        }
    }
}

/// How webhook delivery misbehaves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhookFaults {
    /// The next N deliveries (event x webhook) are silently dropped.
    /// All webhook faults apply to events as they happen, not to those already queued.
    pub drop_next: u32,
    /// Every delivery is sent twice (same event, new delivery id).
    pub duplicate: bool,
    /// Queued events are held (for `delay`, at least 100 ms, or until settled or the
    /// faults change) and then delivered newest-first.
    pub reorder: bool,
    /// Every delivery waits this long before its first attempt.
    #[serde(with = "millis")]
    pub delay: Duration,
    /// First attempts go out concurrently instead of one after another, each after a random wait
    /// of up to `jitter`: a later event can reach the receiver first, as E2B's deliveries can.
    pub concurrent: bool,
    #[serde(with = "millis")]
    pub jitter: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct FaultBook {
    routes: Mutex<HashMap<Route, Fault>>,
    /// Faults of one team's calls (by the team its API key authenticates as): they take the place
    /// of the route's fault for that team, so one account can fail while the others work.
    team_routes: Mutex<HashMap<(String, Route), Fault>>,
    /// Draws for `error_rate`; seeded for a reproducible run.
    rng: Mutex<fastrand::Rng>,
    hits: Mutex<HashMap<(Route, FaultKind), u64>>,
}

/// What a fault did to one call, as counted by [`crate::Emulator::fault_hits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Answered 429 (`rate_limit_burst`).
    RateLimited,
    /// Refused before the handler (`fail_next`, `error_rate`): nothing changed.
    Refused,
    /// Applied, then answered an error (`applied_then_fail_next`).
    AppliedThenFailed,
    /// Applied, then held back (`applied_then_hang_next`).
    AppliedThenHung,
    /// Applied only after a wait (`apply_late_next`), whoever still waits for the answer.
    AppliedLate,
    /// A fork answered with a per-fork error (`fork_error_next`).
    ForkFailed,
    /// Delayed by `latency`.
    Delayed,
}

/// How many calls to one route a fault of one kind hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultHit {
    pub route: Route,
    pub kind: FaultKind,
    pub count: u64,
}

impl FaultBook {
    pub(crate) fn seeded(seed: Option<u64>) -> FaultBook {
        FaultBook {
            rng: Mutex::new(seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed)),
            ..FaultBook::default()
        }
    }

    /// Every (route, kind) a fault hit, most hit first.
    pub(crate) fn hits(&self) -> Vec<FaultHit> {
        let mut hits: Vec<FaultHit> = lock(&self.hits)
            .iter()
            .map(|(&(route, kind), &count)| FaultHit { route, kind, count })
            .collect();
        hits.sort_by(|a, b| b.count.cmp(&a.count).then(a.kind.cmp(&b.kind)));
        hits
    }

    fn hit(&self, route: Route, kind: FaultKind) {
        *lock(&self.hits).entry((route, kind)).or_default() += 1;
    }

    pub(crate) fn set(&self, route: Route, fault: Fault) {
        lock(&self.routes).insert(route, fault);
    }

    /// Sets the fault of `team`'s calls to `route`, in place of the route's fault for that team.
    pub(crate) fn set_for_team(&self, team: &str, route: Route, fault: Fault) {
        lock(&self.team_routes).insert((team.to_owned(), route), fault);
    }

    pub(crate) fn clear_for_team(&self, team: &str, route: Route) {
        lock(&self.team_routes).remove(&(team.to_owned(), route));
    }

    /// Turns every route's fault off, every team's too (the hit counts stay: they are the run's figures).
    pub(crate) fn clear(&self) {
        lock(&self.routes).clear();
        lock(&self.team_routes).clear();
    }

    pub(crate) fn clear_hits(&self) {
        lock(&self.hits).clear();
    }

    pub(crate) fn all(&self) -> HashMap<Route, Fault> {
        lock(&self.routes).clone()
    }

    /// Applies the route's fault (or the calling team's, when it has one) to one call: sleeps for
    /// its latency and says whether the call fails before reaching the handler, or what happens to
    /// its answer after.
    pub(crate) async fn intercept(&self, route: Route, team: Option<&str>) -> Verdict {
        let (latency, verdict) = {
            let mut teams = lock(&self.team_routes);
            let mut routes = lock(&self.routes);
            let own = team.and_then(|team| teams.get_mut(&(team.to_owned(), route)));
            let Some(fault) = own.or_else(|| routes.get_mut(&route)) else {
                return Verdict::Pass;
            };
            (fault.latency, fault.next_verdict(&mut lock(&self.rng)))
        };
        let kind = match &verdict {
            Verdict::Pass => None,
            Verdict::Refuse(ApiError::RateLimited) => Some(FaultKind::RateLimited),
            Verdict::Refuse(_) => Some(FaultKind::Refused),
            Verdict::AppliedThenFail(_) => Some(FaultKind::AppliedThenFailed),
            Verdict::AppliedThenHang(_) => Some(FaultKind::AppliedThenHung),
            Verdict::ApplyLate(_) => Some(FaultKind::AppliedLate),
            Verdict::ForkError(_) => Some(FaultKind::ForkFailed),
        };
        if let Some(kind) = kind {
            self.hit(route, kind);
        }
        if !latency.is_zero() {
            self.hit(route, FaultKind::Delayed);
            tokio::time::sleep(latency).await;
        }
        verdict
    }
}

/// What a fault does to one call.
#[derive(Debug)]
pub(crate) enum Verdict {
    Pass,
    /// Refused before the handler: nothing changed.
    Refuse(ApiError),
    /// The handler runs; its answer is replaced by this error.
    AppliedThenFail(ApiError),
    /// The handler runs; its answer is held back this long.
    AppliedThenHang(Duration),
    /// The handler runs after this long, in a task of its own; its answer goes back if anyone waits.
    ApplyLate(Duration),
    /// A fork's results are errors with this status; nothing is started.
    ForkError(StatusCode),
}

impl Fault {
    fn next_verdict(&mut self, rng: &mut fastrand::Rng) -> Verdict {
        let status = StatusCode::from_u16(self.error_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if self.rate_limit_burst > 0 {
            self.rate_limit_burst -= 1;
            return Verdict::Refuse(ApiError::RateLimited);
        }
        if self.fail_next > 0 {
            self.fail_next -= 1;
            return Verdict::Refuse(ApiError::Injected(status));
        }
        if self.applied_then_fail_next > 0 {
            self.applied_then_fail_next -= 1;
            return Verdict::AppliedThenFail(ApiError::Injected(status));
        }
        if self.applied_then_hang_next > 0 {
            self.applied_then_hang_next -= 1;
            return Verdict::AppliedThenHang(self.hang_for);
        }
        if self.apply_late_next > 0 {
            self.apply_late_next -= 1;
            return Verdict::ApplyLate(self.apply_after);
        }
        if self.fork_error_next > 0 {
            self.fork_error_next -= 1;
            return Verdict::ForkError(status);
        }
        if self.error_rate > 0.0 && rng.f64() < self.error_rate {
            return Verdict::Refuse(ApiError::Injected(status));
        }
        Verdict::Pass
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Durations travel as whole milliseconds in the admin API.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_v1_and_v2_paths() {
        assert_eq!(
            Route::classify(&Method::POST, Some("/v2/sandboxes")),
            Route::CreateSandbox
        );
        assert_eq!(
            Route::classify(&Method::GET, Some("/v2/sandboxes")),
            Route::ListSandboxes
        );
        assert_eq!(
            Route::classify(&Method::POST, Some("/v2/sandboxes/{id}/connect")),
            Route::ConnectSandbox
        );
        assert_eq!(
            Route::classify(&Method::DELETE, Some("/templates/{id}")),
            Route::DeleteSnapshot
        );
        assert_eq!(Route::classify(&Method::GET, None), Route::Unknown);
    }

    #[test]
    fn burst_then_fail_next_then_healthy() {
        let mut fault = Fault {
            rate_limit_burst: 1,
            fail_next: 1,
            error_status: 503,
            ..Fault::default()
        };
        let rng = &mut fastrand::Rng::with_seed(1);
        assert!(matches!(
            fault.next_verdict(rng),
            Verdict::Refuse(ApiError::RateLimited)
        ));
        assert!(matches!(fault.next_verdict(rng), Verdict::Refuse(ApiError::Injected(s)) if s.as_u16() == 503));
        assert!(matches!(fault.next_verdict(rng), Verdict::Pass));
    }

    #[tokio::test]
    async fn a_seeded_error_rate_fails_the_same_calls_and_counts_its_hits() {
        let draws = |seed| async move {
            let book = FaultBook::seeded(Some(seed));
            book.set(
                Route::KillSandbox,
                Fault {
                    error_rate: 0.5,
                    ..Fault::default()
                },
            );
            let mut failed = Vec::new();
            for _ in 0..32 {
                failed.push(matches!(
                    book.intercept(Route::KillSandbox, None).await,
                    Verdict::Refuse(_)
                ));
            }
            (failed, book.hits())
        };
        let (first, hits) = draws(7).await;
        let (again, _) = draws(7).await;
        assert_eq!(first, again, "the same seed fails the same calls");
        let refused = first.iter().filter(|f| **f).count() as u64;
        assert!(refused > 0 && refused < 32, "{refused} of 32 at rate 0.5");
        assert_eq!(
            hits,
            vec![FaultHit {
                route: Route::KillSandbox,
                kind: FaultKind::Refused,
                count: refused
            }]
        );
    }

    #[tokio::test]
    async fn a_teams_fault_fails_only_that_teams_calls() {
        let book = FaultBook::seeded(Some(1));
        let failing = Fault {
            error_rate: 1.0,
            error_status: 503,
            ..Fault::default()
        };
        book.set_for_team("team-b", Route::ListSandboxes, failing);
        assert!(matches!(
            book.intercept(Route::ListSandboxes, Some("team-b")).await,
            Verdict::Refuse(_)
        ));
        assert!(matches!(
            book.intercept(Route::ListSandboxes, Some("team-a")).await,
            Verdict::Pass
        ));
        assert!(matches!(
            book.intercept(Route::ListSandboxes, None).await,
            Verdict::Pass
        ));
        assert!(matches!(
            book.intercept(Route::KillSandbox, Some("team-b")).await,
            Verdict::Pass
        ));
        book.clear();
        assert!(matches!(
            book.intercept(Route::ListSandboxes, Some("team-b")).await,
            Verdict::Pass
        ));
    }
}
