//! A team's own E2B key: registered, shown (its last four characters) and forgotten by the team.

use axum::Json;
use axum::extract::State as Shared;
use http::StatusCode;
use sandman::team_keys::{KeySource, TeamKeyStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Api;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Admin, JsonBody, Team};

const ACCOUNT_IN_USE: &str = "`account_in_use`: the team has running or paused sandboxes or snapshots in its current E2B account that the key it would switch to cannot reach (kill or delete them first, or use a key of the same account); `conflict`: this deployment does not accept teams' own keys";

pub fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new().routes(routes!(get_e2b_key, put_e2b_key, delete_e2b_key))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct E2bKeySettings {
    /// The team's E2B API key. Checked with E2B, then stored encrypted; never shown again.
    #[schema(min_length = 8, max_length = 256)]
    pub api_key: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KeyInUse {
    /// The key this team registered.
    Registered,
    /// A key the deployment configured for this team.
    DeploymentTeam,
    /// The deployment's default key.
    DeploymentDefault,
    /// No key: this team's E2B calls fail until one is registered.
    None,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct E2bKeyView {
    /// Whether the team registered a key of its own.
    pub registered: bool,
    /// The last four characters of the registered key; never more.
    pub last_four: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<OffsetDateTime>,
    /// Which key the team's E2B calls use now.
    pub in_use: KeyInUse,
}

impl From<TeamKeyStatus> for E2bKeyView {
    fn from(status: TeamKeyStatus) -> Self {
        E2bKeyView {
            registered: status.registered.is_some(),
            last_four: status.registered.as_ref().map(|key| key.last_four.clone()),
            updated_at: status.registered.map(|key| key.updated_at),
            in_use: match status.in_use {
                KeySource::Registered => KeyInUse::Registered,
                KeySource::DeploymentTeam => KeyInUse::DeploymentTeam,
                KeySource::DeploymentDefault => KeyInUse::DeploymentDefault,
                KeySource::None => KeyInUse::None,
            },
        }
    }
}

/// Whether the caller's team has its own E2B key, and which key its calls use.
#[utoipa::path(get, path = "/v1/team/e2b", tag = "team",
    responses((status = 200, body = E2bKeyView), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_e2b_key(Shared(api): Shared<Api>, Team(team): Team) -> Result<Json<E2bKeyView>, ApiError> {
    Ok(Json(api.sandman.team_key_status(&team).await?.into()))
}

/// Registers the team's own E2B key (team admins only). E2B is asked first: a key it refuses
/// answers 400 and nothing is stored. Every later E2B call for the team's projects uses it. While
/// the team has running or paused sandboxes or snapshots, a key of another E2B account (which
/// cannot reach them) answers 409 `account_in_use`; another key of the same account is accepted.
#[utoipa::path(put, path = "/v1/team/e2b", tag = "team", request_body = E2bKeySettings,
    responses((status = 200, body = E2bKeyView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody, description = ACCOUNT_IN_USE), (status = 413, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn put_e2b_key(
    Shared(api): Shared<Api>,
    Admin(team): Admin,
    JsonBody(settings): JsonBody<E2bKeySettings>,
) -> Result<Json<E2bKeyView>, ApiError> {
    Ok(Json(
        api.sandman.register_team_key(&team, &settings.api_key).await?.into(),
    ))
}

/// Forgets the team's own key (team admins only): its calls use the deployment's keys again,
/// unless those cannot reach the team's running or paused sandboxes or snapshots (409
/// `account_in_use`).
#[utoipa::path(delete, path = "/v1/team/e2b", tag = "team",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = ACCOUNT_IN_USE), (status = 429, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn delete_e2b_key(Shared(api): Shared<Api>, Admin(team): Admin) -> Result<StatusCode, ApiError> {
    api.sandman.forget_team_key(&team).await?;
    Ok(StatusCode::NO_CONTENT)
}
