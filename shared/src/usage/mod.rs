//! Usage and budgets. Usage is what E2B reports on `paused` and `killed` (the webhook adds it to
//! per-period counters of the project and its team in the write that records the event); a team's
//! monthly budget is compared with its period's estimated cost right after each such write:
//! at 80% a lifecycle line records it (once per period), at 100% opens are refused with the
//! budget's name and the period's end, and the idle enforcer pauses the team's running sandboxes
//! (`enforce_budgets`). A new period starts from zero: nothing resets the counters.

mod backfill;
mod period;
mod rates;

pub use backfill::Backfill;

pub use period::Period;
pub use rates::{DEFAULT_GIB_SECOND_USD, DEFAULT_VCPU_SECOND_USD, PRICES_AS_OF, Rates};

use time::OffsetDateTime;

use crate::Sandman;
use crate::domain::{Actor, ProjectKey, SessionState, TeamId};
use crate::error::Error;
use crate::store::{Budget, Consistency, PeriodUsage};
use crate::workspace::{PauseOutcome, PauseRequest};

/// The share of a budget at which a lifecycle line records that it is being used up.
pub const WARN_AT: f64 = 0.8;

/// What `enforce_budgets` did in one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BudgetTick {
    pub teams: u32,
    pub paused: u32,
    pub failures: u32,
}

impl Sandman {
    pub async fn project_usage(&self, key: &ProjectKey, period: Period) -> Result<PeriodUsage, Error> {
        Ok(self.store.project_usage(key, period).await?)
    }

    pub async fn team_usage(&self, team: &TeamId, period: Period) -> Result<PeriodUsage, Error> {
        Ok(self.store.team_usage(team, period).await?)
    }

    /// Sets the team's monthly budget, and applies it to the current period at once.
    pub async fn set_budget(&self, team: &TeamId, monthly_usd: f64) -> Result<Budget, Error> {
        if !monthly_usd.is_finite() || monthly_usd <= 0.0 {
            return Err(Error::Invalid {
                field: "monthlyUsd",
                message: "monthlyUsd must be a positive number of US dollars".into(),
            });
        }
        let now = self.now();
        self.store.put_budget(team, monthly_usd, now).await?;
        self.check_budget(team, Period::of(now), None).await?;
        self.store
            .budget(team, Consistency::Strong)
            .await?
            .ok_or(Error::NotFound("budget"))
    }

    /// Refuses to start or resume a sandbox of a team whose budget this period is reached.
    pub async fn check_budget_allows(&self, team: &TeamId) -> Result<(), Error> {
        let now = self.now();
        let period = Period::of(now);
        let Some(budget) = self.store.budget(team, Consistency::Eventual).await? else {
            return Ok(());
        };
        if budget.reached_period.as_deref() == Some(period.to_string().as_str()) {
            return Err(Error::BudgetReached(format!(
                "the team's monthly budget of ${:.2} for {period} is reached; sandboxes stay paused until {} \
                 (the start of the next period), or until the budget is raised",
                budget.monthly_usd,
                rfc3339(period.end()),
            )));
        }
        Ok(())
    }

    /// After usage was counted for `key` at `at`: records 80% and 100% of the team's budget, each
    /// once per period. Failures are logged: the usage is counted, and the next event checks again.
    pub async fn after_usage(&self, key: &ProjectKey, at: OffsetDateTime) {
        let period = Period::of(at);
        if period != Period::of(self.now()) {
            return;
        }
        if let Err(err) = self.check_budget(&key.team, period, Some(key)).await {
            tracing::warn!(project = %key, error = %err, "budget check failed; the next usage checks again");
        }
    }

    async fn check_budget(&self, team: &TeamId, period: Period, key: Option<&ProjectKey>) -> Result<(), Error> {
        let Some(budget) = self.store.budget(team, Consistency::Strong).await? else {
            return Ok(());
        };
        let spent = self
            .config
            .rates
            .cost_usd(&self.store.team_usage(team, period).await?.used);
        let share = spent / budget.monthly_usd;
        // The strong read says whether this period's marks are written: only a crossing writes.
        let this_period = Some(period.to_string());
        let warn = share >= WARN_AT && budget.warned_period != this_period;
        let reach = share >= 1.0 && budget.reached_period != this_period;
        if warn && self.store.mark_budget_warned(team, period).await? {
            let cause = format!(
                "budget: {:.0}% of the team's monthly budget of ${:.2} used (${spent:.2} in {period})",
                share * 100.0,
                budget.monthly_usd
            );
            self.note(key, &cause).await?;
        }
        if reach
            && self
                .store
                .mark_budget_reached(team, period, budget.monthly_usd, self.now())
                .await?
        {
            let cause = format!(
                "budget: the team's monthly budget of ${:.2} is reached; running sandboxes pause and opens are refused until {}",
                budget.monthly_usd,
                rfc3339(period.end())
            );
            tracing::warn!(team = %team, spent, budget = budget.monthly_usd, "budget reached");
            self.note(key, &cause).await?;
        }
        Ok(())
    }

    async fn note(&self, key: Option<&ProjectKey>, cause: &str) -> Result<(), Error> {
        let Some(key) = key else { return Ok(()) };
        let record = self.project(key).await?;
        if let Some(state) = record.state() {
            self.store
                .note_event(key, Actor::Webhook, cause, state, self.now())
                .await?;
        }
        Ok(())
    }

    /// The idle enforcer's part: pauses the running sandboxes of every team whose budget was
    /// reached. One query per tick when no budget was reached.
    pub async fn enforce_budgets(&self) -> Result<BudgetTick, Error> {
        let mut tick = BudgetTick::default();
        let current = Period::of(self.now()).to_string();
        for reached in self.store.budgets_reached().await? {
            tick.teams += 1;
            // A listing of a period past, or of a budget raised or removed since: nothing to pause.
            let still = self.store.budget(&reached.team, Consistency::Strong).await?;
            let stands = still.is_some_and(|b| b.reached_period.as_deref() == Some(current.as_str()));
            if reached.period != current || !stands {
                self.store.clear_budget_reached(&reached.team, &reached.period).await?;
                continue;
            }
            let (paused, failures) = self.pause_team(&reached.team).await?;
            tick.paused += paused;
            tick.failures += failures;
            if failures == 0 {
                self.store.clear_budget_reached(&reached.team, &reached.period).await?;
            }
        }
        Ok(tick)
    }

    async fn pause_team(&self, team: &TeamId) -> Result<(u32, u32), Error> {
        let (mut paused, mut failures) = (0, 0);
        let mut cursor = None;
        loop {
            let page = self.store.list_projects(team, cursor.as_ref(), 100).await?;
            for summary in page.items.iter().filter(|p| {
                p.state
                    .is_some_and(|s| s != SessionState::Killed && s != SessionState::Paused)
            }) {
                let key = ProjectKey::new(team.clone(), summary.project_id.clone());
                let record = self.project(&key).await?;
                let sandbox_id = record
                    .session
                    .as_ref()
                    .and_then(|s| s.sandbox.as_ref())
                    .map(|s| s.sandbox_id.clone());
                let (Some(SessionState::Running), Some(sandbox_id)) = (record.state(), sandbox_id) else {
                    // Mid-transition: try again next tick.
                    failures += 1;
                    continue;
                };
                let request = PauseRequest {
                    key: key.clone(),
                    expected_version: record.version,
                    sandbox_id,
                    actor: Actor::IdleEnforcer,
                    cause: "budget: the team's monthly budget is reached".into(),
                    idle_by: None,
                    snapshot_first: false,
                };
                match self.pause(request).await {
                    Ok(PauseOutcome::Paused | PauseOutcome::AlreadyPaused | PauseOutcome::Gone) => paused += 1,
                    Ok(outcome) => {
                        tracing::warn!(project = %key, ?outcome, "budget pause did not happen; next tick retries");
                        failures += 1;
                    }
                    Err(err) => {
                        tracing::warn!(project = %key, error = %err, "budget pause failed; next tick retries");
                        failures += 1;
                    }
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok((paused, failures)),
            }
        }
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}
