//! `/secrets` (E2B's secrets API) and `PUT /sandboxes/{id}/network`. With
//! `EmulatorConfig::secrets_api` off, every route answers 404, as an E2B without it does.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::wire;
use crate::app::{App, Team};
use crate::error::ApiError;
use crate::secrets::{NetworkRules, SecretMeta};

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NewSecretBody {
    pub name: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NetworkBody {
    #[serde(default)]
    pub rules: NetworkRules,
}

fn available(app: &App) -> Result<(), ApiError> {
    if app.config.secrets_api {
        Ok(())
    } else {
        Err(ApiError::NotFound("no such route".to_owned()))
    }
}

fn value_of(body: NewSecretBody) -> Result<String, ApiError> {
    body.value
        .ok_or_else(|| ApiError::BadRequest("value is required".to_owned()))
}

pub(crate) async fn list(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
) -> Result<Json<Vec<SecretMeta>>, ApiError> {
    available(&app)?;
    Ok(Json(app.secret_book().list(&team)))
}

pub(crate) async fn create(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    body: Bytes,
) -> Result<(StatusCode, Json<SecretMeta>), ApiError> {
    available(&app)?;
    let body: NewSecretBody = wire::parse(&body)?;
    let name = body
        .name
        .clone()
        .ok_or_else(|| ApiError::BadRequest("name is required".to_owned()))?;
    let value = value_of(body)?;
    let meta = app.secret_book().create(&team, &name, value, app.now())?;
    Ok((StatusCode::CREATED, Json(meta)))
}

pub(crate) async fn get_one(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
) -> Result<Json<SecretMeta>, ApiError> {
    available(&app)?;
    Ok(Json(app.secret_book().get(&team, &id)?))
}

pub(crate) async fn update(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<SecretMeta>, ApiError> {
    available(&app)?;
    let value = value_of(wire::parse(&body)?)?;
    Ok(Json(app.secret_book().update(&team, &id, value, app.now())?))
}

pub(crate) async fn delete(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    available(&app)?;
    app.secret_book().delete(&team, &id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces a running sandbox's egress rules (the only network field the emulator keeps).
pub(crate) async fn set_network(
    State(app): State<App>,
    Extension(Team(team)): Extension<Team>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let body: NetworkBody = wire::parse(&body)?;
    app.world().set_network_rules(&team, &id, body.rules)?;
    Ok(StatusCode::NO_CONTENT)
}
