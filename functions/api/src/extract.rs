//! What a handler takes from a request, each refusing with the right `ApiError`: the caller and
//! its team (from the bearer token, checked before anything else, then the team's request rate),
//! the project and snapshot named by the path, and a JSON body.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use http::request::Parts;
use http::{StatusCode, header};
use sandman::access::Action;
use sandman::auth::Caller;
use sandman::domain::{ProjectId, ProjectKey, SnapshotId, TeamId};
use serde::de::DeserializeOwned;

use crate::Api;
use crate::error::ApiError;

/// The verified caller: its token checked (401 otherwise), then its team's request rate (429
/// otherwise), once per request whatever extracts it.
pub struct Verified(pub Caller);

impl FromRequestParts<Api> for Verified {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(Verified(caller.clone()));
        }
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        let caller = api.verifier.verify_header(header).await?;
        api.rates
            .admit(&caller.team, api.sandman.now())
            .map_err(ApiError::rate_limited)?;
        parts.extensions.insert(caller.clone());
        Ok(Verified(caller))
    }
}

/// The team of the verified caller.
pub struct Team(pub TeamId);

impl FromRequestParts<Api> for Team {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let Verified(caller) = Verified::from_request_parts(parts, api).await?;
        Ok(Team(caller.team))
    }
}

/// The team of a verified caller allowed to manage it (`sandman::access`, `ManageTeam`): its token
/// carries the deployment's admin role (`JWT_ADMIN_ROLE`); any other caller gets 403, and without
/// a configured role, everyone does.
pub struct Admin(pub TeamId);

impl FromRequestParts<Api> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let Verified(caller) = Verified::from_request_parts(parts, api).await?;
        api.sandman.authorize(&caller, Action::ManageTeam)?;
        Ok(Admin(caller.team))
    }
}

/// `/projects/{projectId}/...` of the caller's team. Another team's project is simply not in
/// this key space, so it answers 404 exactly like a missing one.
pub struct Project(pub ProjectKey);

impl FromRequestParts<Api> for Project {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let Team(team) = Team::from_request_parts(parts, api).await?;
        let project = ProjectId::parse(path_param(parts, api, "projectId").await?)
            .map_err(|err| ApiError::invalid("projectId", err.to_string()))?;
        Ok(Project(ProjectKey::new(team, project)))
    }
}

/// `/projects/{projectId}/snapshots/{snapshotId}`.
pub struct ProjectSnapshot(pub ProjectKey, pub SnapshotId);

impl FromRequestParts<Api> for ProjectSnapshot {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let Project(key) = Project::from_request_parts(parts, api).await?;
        let snapshot = SnapshotId::parse(path_param(parts, api, "snapshotId").await?)
            .map_err(|err| ApiError::invalid("snapshotId", err.to_string()))?;
        Ok(ProjectSnapshot(key, snapshot))
    }
}

/// `/webhooks/endpoints/{endpointId}` of the caller's team (`ep_` + a lowercase ULID).
/// A project's secret, by its name in the path.
pub struct ProjectSecret(pub ProjectKey, pub String);

impl FromRequestParts<Api> for ProjectSecret {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let Project(key) = Project::from_request_parts(parts, api).await?;
        let name = path_param(parts, api, "name").await?;
        sandman::env::check_secret_name(&name)?;
        Ok(ProjectSecret(key, name))
    }
}

/// A team's secret, by its name in the path; only a team admin may change one.
pub struct TeamSecret(pub TeamId, pub String);

impl FromRequestParts<Api> for TeamSecret {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let Admin(team) = Admin::from_request_parts(parts, api).await?;
        let name = path_param(parts, api, "name").await?;
        sandman::env::check_secret_name(&name)?;
        Ok(TeamSecret(team, name))
    }
}

pub struct TeamEndpoint(pub TeamId, pub String);

impl FromRequestParts<Api> for TeamEndpoint {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let Team(team) = Team::from_request_parts(parts, api).await?;
        let id = path_param(parts, api, "endpointId").await?;
        let well_formed = id
            .strip_prefix("ep_")
            .is_some_and(|ulid| ulid.len() == 26 && ulid.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
        if !well_formed {
            return Err(ApiError::invalid(
                "endpointId",
                "endpointId is ep_ followed by 26 lowercase letters and digits",
            ));
        }
        Ok(TeamEndpoint(team, id))
    }
}

async fn path_param(parts: &mut Parts, api: &Api, name: &'static str) -> Result<String, ApiError> {
    let params = RawPathParams::from_request_parts(parts, api)
        .await
        .map_err(|err| ApiError::invalid(name, err.body_text()))?;
    params
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
        .ok_or_else(|| ApiError::invalid(name, format!("{name} is missing from the path")))
}

/// A JSON body, within the router's body limit (413 past it). The Content-Type is not checked:
/// the body is JSON (or empty) or it is refused.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Api> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, api: &Api) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, api)
            .await
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body is larger than {} bytes", crate::BODY_LIMIT),
                ),
                _ => ApiError::invalid("body", rejection.body_text()),
            })?;
        // An empty body reads as `{}`. The message names the offending field (`retention.keepLast: ...`).
        let json: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
        // Every body is an object; serde would also read a struct from an array of its fields.
        if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::invalid("body", "the body must be a JSON object"));
        }
        let axum::Json(value) =
            axum::Json::<T>::from_bytes(json).map_err(|rejection| ApiError::invalid("body", rejection.body_text()))?;
        Ok(JsonBody(value))
    }
}
