//! A project's (and its team's) env vars and secrets. Env vars are read back; secrets are
//! write-only: a listing shows names, the last four characters, when and by whom. Rules and
//! delivery: `sandman::env` and docs/SECRETS.md.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State as Shared;
use sandman::auth::Caller;
use sandman::env::{Delivery, EnvView, Scope, SecretChange, SecretSpec, SecretView, SecretsView};
use sandman::secrets::Secret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Api;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Admin, JsonBody, Project, ProjectSecret, TeamSecret, Verified};

pub fn routes() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(get_project_env, put_project_env))
        .routes(routes!(list_project_secrets))
        .routes(routes!(put_project_secret, delete_project_secret))
        .routes(routes!(get_team_env, put_team_env))
        .routes(routes!(list_team_secrets))
        .routes(routes!(put_team_secret, delete_team_secret))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvSettings {
    /// Every env var (the set is replaced). Names: letters, digits and `_`, not starting with a
    /// digit, not `E2B_…`; at most 100 vars, 16 KiB a value, 48 KiB in all.
    pub vars: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvAnswer {
    pub vars: BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<OffsetDateTime>,
    pub updated_by: Option<String>,
    /// A sandbox runs with older env vars or secret rules: they apply from its next start or
    /// restore (E2B takes env vars only when it creates a sandbox).
    pub restart_required: bool,
}

impl From<EnvView> for EnvAnswer {
    fn from(view: EnvView) -> Self {
        EnvAnswer {
            vars: view.vars,
            updated_at: view.updated_at,
            updated_by: view.updated_by,
            restart_required: view.restart_required,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretSettings {
    /// The value: write-only, never shown again (1 byte to 32 KiB, no line breaks).
    pub value: String,
    /// The hosts whose HTTPS requests carry it (exact names, 1 to 10).
    pub hosts: Vec<String>,
    /// The header it goes into; `Authorization` when omitted.
    pub header: Option<String>,
    /// Text before the value in the header, e.g. `Bearer `.
    pub prefix: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretAnswer {
    pub name: String,
    /// `false`: copied by name from a fork's source; set it again to use it.
    pub set: bool,
    /// The value's last four characters (none for a value of 8 or fewer).
    pub last_four: Option<String>,
    pub hosts: Vec<String>,
    pub header: String,
    pub prefix: String,
    /// `proxy`: E2B's egress proxy adds it to requests to `hosts` and it never enters the
    /// sandbox; `env`: the account has no secrets API, so it is an env var in the sandbox.
    pub delivery: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
}

impl From<SecretView> for SecretAnswer {
    fn from(view: SecretView) -> Self {
        SecretAnswer {
            name: view.name,
            set: view.set,
            last_four: view.last_four,
            hosts: view.hosts,
            header: view.header,
            prefix: view.prefix,
            delivery: match view.delivery {
                Delivery::Proxy => "proxy",
                Delivery::Env => "env",
            }
            .to_owned(),
            updated_at: view.updated_at,
            updated_by: view.updated_by,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretsAnswer {
    pub items: Vec<SecretAnswer>,
    pub restart_required: bool,
}

impl From<SecretsView> for SecretsAnswer {
    fn from(view: SecretsView) -> Self {
        SecretsAnswer {
            items: view.items.into_iter().map(SecretAnswer::from).collect(),
            restart_required: view.restart_required,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretChangeAnswer {
    pub secret: SecretAnswer,
    /// A rotation of a proxy-delivered secret reaches running sandboxes at once (false here);
    /// a new name, other hosts, or env delivery apply from the next start or restore.
    pub restart_required: bool,
}

impl From<SecretChange> for SecretChangeAnswer {
    fn from(change: SecretChange) -> Self {
        SecretChangeAnswer {
            secret: change.secret.into(),
            restart_required: change.restart_required,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretDeleted {
    pub restart_required: bool,
}

/// Who a lifecycle line names: the token's subject.
fn by(caller: &Caller) -> String {
    caller.subject.clone().unwrap_or_else(|| "a team token".to_owned())
}

fn spec(settings: SecretSettings) -> SecretSpec {
    SecretSpec {
        value: Secret::new(settings.value),
        hosts: settings.hosts,
        header: settings.header.unwrap_or_else(|| "Authorization".to_owned()),
        prefix: settings.prefix.unwrap_or_default(),
    }
}

/// The project's own env vars (its team's are inherited: `GET /v1/team/env`).
#[utoipa::path(get, path = "/v1/projects/{projectId}/env", tag = "settings",
    params(("projectId" = String, Path)),
    responses((status = 200, body = EnvAnswer), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_project_env(Shared(api): Shared<Api>, Project(key): Project) -> Result<Json<EnvAnswer>, ApiError> {
    Ok(Json(api.sandman.env_of(&Scope::Project(key)).await?.into()))
}

/// Replaces the project's env vars. A name the project sets hides its team's of that name.
/// Running and paused sandboxes keep theirs until their next start or restore (`restartRequired`).
#[utoipa::path(put, path = "/v1/projects/{projectId}/env", tag = "settings", request_body = EnvSettings,
    params(("projectId" = String, Path)),
    responses((status = 200, body = EnvAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
async fn put_project_env(
    Shared(api): Shared<Api>,
    Verified(caller): Verified,
    Project(key): Project,
    JsonBody(settings): JsonBody<EnvSettings>,
) -> Result<Json<EnvAnswer>, ApiError> {
    let view = api
        .sandman
        .set_env(&Scope::Project(key), settings.vars, &by(&caller))
        .await?;
    Ok(Json(view.into()))
}

/// The project's own secrets: names, last four characters, never a value.
#[utoipa::path(get, path = "/v1/projects/{projectId}/secrets", tag = "settings",
    params(("projectId" = String, Path)),
    responses((status = 200, body = SecretsAnswer), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_project_secrets(
    Shared(api): Shared<Api>,
    Project(key): Project,
) -> Result<Json<SecretsAnswer>, ApiError> {
    Ok(Json(api.sandman.secrets_of(&Scope::Project(key)).await?.into()))
}

/// Sets (or rotates) a secret: stored encrypted, handed to E2B's secrets API, added by E2B's
/// egress proxy to the sandbox's requests to `hosts` (a rotation reaches a running sandbox at
/// once). Where the E2B account has no secrets API it goes as an env var (`delivery: env`).
#[utoipa::path(put, path = "/v1/projects/{projectId}/secrets/{name}", tag = "settings", request_body = SecretSettings,
    params(("projectId" = String, Path), ("name" = String, Path, pattern = r"^[A-Z_][A-Z0-9_]{0,63}$")),
    responses((status = 200, body = SecretChangeAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("bearer" = [])))]
async fn put_project_secret(
    Shared(api): Shared<Api>,
    Verified(caller): Verified,
    ProjectSecret(key, name): ProjectSecret,
    JsonBody(settings): JsonBody<SecretSettings>,
) -> Result<Json<SecretChangeAnswer>, ApiError> {
    let change = api
        .sandman
        .put_secret(&Scope::Project(key), &name, spec(settings), &by(&caller))
        .await?;
    Ok(Json(change.into()))
}

/// Removes a secret, here and from E2B: a running sandbox's requests stop carrying it at once.
#[utoipa::path(delete, path = "/v1/projects/{projectId}/secrets/{name}", tag = "settings",
    params(("projectId" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = SecretDeleted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("bearer" = [])))]
async fn delete_project_secret(
    Shared(api): Shared<Api>,
    Verified(caller): Verified,
    ProjectSecret(key, name): ProjectSecret,
) -> Result<Json<SecretDeleted>, ApiError> {
    let restart_required = api
        .sandman
        .delete_secret(&Scope::Project(key), &name, &by(&caller))
        .await?;
    Ok(Json(SecretDeleted { restart_required }))
}

/// The team's env vars, inherited by each of its projects.
#[utoipa::path(get, path = "/v1/team/env", tag = "settings",
    responses((status = 200, body = EnvAnswer), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn get_team_env(Shared(api): Shared<Api>, Verified(caller): Verified) -> Result<Json<EnvAnswer>, ApiError> {
    Ok(Json(api.sandman.env_of(&Scope::Team(caller.team)).await?.into()))
}

/// Replaces the team's env vars (team admins only); every project's log notes the change.
#[utoipa::path(put, path = "/v1/team/env", tag = "settings", request_body = EnvSettings,
    responses((status = 200, body = EnvAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
async fn put_team_env(
    Shared(api): Shared<Api>,
    Verified(caller): Verified,
    Admin(team): Admin,
    JsonBody(settings): JsonBody<EnvSettings>,
) -> Result<Json<EnvAnswer>, ApiError> {
    let view = api
        .sandman
        .set_env(&Scope::Team(team), settings.vars, &by(&caller))
        .await?;
    Ok(Json(view.into()))
}

/// The team's secrets, inherited by each of its projects: names, never values.
#[utoipa::path(get, path = "/v1/team/secrets", tag = "settings",
    responses((status = 200, body = SecretsAnswer), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
async fn list_team_secrets(
    Shared(api): Shared<Api>,
    Verified(caller): Verified,
) -> Result<Json<SecretsAnswer>, ApiError> {
    Ok(Json(api.sandman.secrets_of(&Scope::Team(caller.team)).await?.into()))
}

/// Sets (or rotates) a team secret (team admins only).
#[utoipa::path(put, path = "/v1/team/secrets/{name}", tag = "settings", request_body = SecretSettings,
    params(("name" = String, Path, pattern = r"^[A-Z_][A-Z0-9_]{0,63}$")),
    responses((status = 200, body = SecretChangeAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("bearer" = [])))]
async fn put_team_secret(
    Shared(api): Shared<Api>,
    Verified(caller): Verified,
    TeamSecret(team, name): TeamSecret,
    JsonBody(settings): JsonBody<SecretSettings>,
) -> Result<Json<SecretChangeAnswer>, ApiError> {
    let change = api
        .sandman
        .put_secret(&Scope::Team(team), &name, spec(settings), &by(&caller))
        .await?;
    Ok(Json(change.into()))
}

/// Removes a team secret (team admins only).
#[utoipa::path(delete, path = "/v1/team/secrets/{name}", tag = "settings",
    params(("name" = String, Path)),
    responses((status = 200, body = SecretDeleted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("bearer" = [])))]
async fn delete_team_secret(
    Shared(api): Shared<Api>,
    Verified(caller): Verified,
    TeamSecret(team, name): TeamSecret,
) -> Result<Json<SecretDeleted>, ApiError> {
    let restart_required = api
        .sandman
        .delete_secret(&Scope::Team(team), &name, &by(&caller))
        .await?;
    Ok(Json(SecretDeleted { restart_required }))
}
