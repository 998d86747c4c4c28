//! Usage (a project's and the team's, per month) and the team's monthly budget.

use axum::Json;
use axum::extract::{Query, State as Shared};
use http::StatusCode;
use sandman::store::{Budget, Consistency, PeriodUsage};
use sandman::usage::{Period, Rates};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Api;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Admin, JsonBody, Project, Team};

pub fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(project_usage))
        .routes(routes!(team_usage))
        .routes(routes!(get_budget, put_budget, delete_budget))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// The month, `YYYY-MM` (UTC); the current one when absent.
    period: Option<String>,
}

impl PeriodQuery {
    fn period(&self, now: OffsetDateTime) -> Result<Period, ApiError> {
        match &self.period {
            None => Ok(Period::of(now)),
            Some(text) => Period::parse(text).ok_or_else(|| ApiError::invalid("period", "period must be YYYY-MM")),
        }
    }
}

/// Compute over a period, and what it is estimated to cost at the deployment's rates.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Compute {
    pub run_seconds: f64,
    pub vcpu_seconds: f64,
    pub memory_mb_seconds: f64,
    pub estimated_cost_usd: f64,
}

/// The prices estimates use: E2B's published per-second prices unless the deployment set others.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RatesView {
    pub vcpu_second_usd: f64,
    pub gib_second_usd: f64,
    /// The date the prices were read from e2b.dev/pricing, or `configured`.
    pub as_of: &'static str,
}

/// A project's or a team's usage in one month, as E2B reported it on `paused` and `killed` events.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageView {
    pub period: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub until: OffsetDateTime,
    pub used: Compute,
    /// Run time pausing avoided: from each pause to the E2B timeout that would otherwise have
    /// ended the sandbox, at the sandbox's size.
    pub saved_by_pausing: Compute,
    pub rates: RatesView,
}

impl UsageView {
    fn of(period: Period, usage: PeriodUsage, rates: &Rates) -> Self {
        let compute = |u: sandman::domain::Usage| Compute {
            run_seconds: u.run_seconds,
            vcpu_seconds: u.vcpu_seconds,
            memory_mb_seconds: u.memory_mb_seconds,
            estimated_cost_usd: rates.cost_usd(&u),
        };
        UsageView {
            period: period.to_string(),
            from: period.start(),
            until: period.end(),
            used: compute(usage.used),
            saved_by_pausing: compute(usage.saved),
            rates: RatesView {
                vcpu_second_usd: rates.vcpu_second_usd,
                gib_second_usd: rates.gib_second_usd,
                as_of: rates.as_of,
            },
        }
    }
}

/// One project's usage in a month: one read of its counters.
#[utoipa::path(get, path = "/v1/projects/{projectId}/usage", tag = "usage", params(("projectId" = String, Path), PeriodQuery),
    responses((status = 200, body = UsageView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn project_usage(
    Shared(api): Shared<Api>,
    Project(key): Project,
    query: Result<Query<PeriodQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<UsageView>, ApiError> {
    let Query(query) = query.map_err(|err| ApiError::invalid("query", err.body_text()))?;
    let period = query.period(api.sandman.now())?;
    api.sandman.project(&key).await?;
    let usage = api.sandman.project_usage(&key, period).await?;
    Ok(Json(UsageView::of(period, usage, &api.sandman.config.rates)))
}

/// The team's usage in a month, over all its projects: one read of its counters.
#[utoipa::path(get, path = "/v1/usage", tag = "usage", params(PeriodQuery),
    responses((status = 200, body = UsageView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn team_usage(
    Shared(api): Shared<Api>,
    Team(team): Team,
    query: Result<Query<PeriodQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<UsageView>, ApiError> {
    let Query(query) = query.map_err(|err| ApiError::invalid("query", err.body_text()))?;
    let period = query.period(api.sandman.now())?;
    let usage = api.sandman.team_usage(&team, period).await?;
    Ok(Json(UsageView::of(period, usage, &api.sandman.config.rates)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BudgetSettings {
    /// The team's monthly budget in US dollars of estimated E2B compute (more than 0).
    pub monthly_usd: f64,
}

/// The team's monthly budget. At 80% of it a lifecycle line records it (once a month); at 100%
/// the team's running sandboxes are paused and opens answer 402 until the month ends (UTC) or
/// the budget is raised. No budget: no limit (the default).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetView {
    pub monthly_usd: f64,
    pub period: String,
    /// Estimated cost of the team's usage this month, at the deployment's rates.
    pub spent_usd: f64,
    /// 80% was passed this month.
    pub warned: bool,
    /// 100% was reached this month: opens are refused until `until`.
    pub reached: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub until: OffsetDateTime,
}

impl BudgetView {
    async fn of(api: &Api, team: &sandman::domain::TeamId, budget: Budget) -> Result<Self, ApiError> {
        let period = Period::of(api.sandman.now());
        let usage = api.sandman.team_usage(team, period).await?;
        let this = Some(period.to_string());
        Ok(BudgetView {
            monthly_usd: budget.monthly_usd,
            period: period.to_string(),
            spent_usd: api.sandman.config.rates.cost_usd(&usage.used),
            warned: budget.warned_period == this,
            reached: budget.reached_period == this,
            until: period.end(),
        })
    }
}

#[utoipa::path(get, path = "/v1/budget", tag = "usage",
    responses((status = 200, body = BudgetView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody, description = "no budget")),
    security(("bearer" = [])))]
async fn get_budget(Shared(api): Shared<Api>, Team(team): Team) -> Result<Json<BudgetView>, ApiError> {
    let budget = api
        .sandman
        .store
        .budget(&team, Consistency::Eventual)
        .await
        .map_err(sandman::Error::from)?
        .ok_or_else(|| ApiError::not_found("the team has no budget"))?;
    Ok(Json(BudgetView::of(&api, &team, budget).await?))
}

/// Sets the team's monthly budget (admins of the team only: the token's role claim,
/// `JWT_ROLE_CLAIM`, default `roles`, must hold the deployment's `JWT_ADMIN_ROLE`; with none
/// configured, nobody is an admin). It applies to the current month at once.
#[utoipa::path(put, path = "/v1/budget", tag = "usage", request_body = BudgetSettings,
    responses((status = 200, body = BudgetView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn put_budget(
    Shared(api): Shared<Api>,
    Admin(team): Admin,
    JsonBody(settings): JsonBody<BudgetSettings>,
) -> Result<Json<BudgetView>, ApiError> {
    let budget = api.sandman.set_budget(&team, settings.monthly_usd).await?;
    Ok(Json(BudgetView::of(&api, &team, budget).await?))
}

/// Removes the team's budget (admins only): nothing is refused for cost any more.
#[utoipa::path(delete, path = "/v1/budget", tag = "usage",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
async fn delete_budget(Shared(api): Shared<Api>, Admin(team): Admin) -> Result<StatusCode, ApiError> {
    api.sandman
        .store
        .delete_budget(&team)
        .await
        .map_err(sandman::Error::from)?;
    Ok(StatusCode::NO_CONTENT)
}
