//! Every route, by resource. Each handler is registered together with its OpenAPI description,
//! so the document served at `/openapi.json` lists exactly the routes the router serves.

mod docs;
mod endpoints;
mod env;
mod events;
mod projects;
pub(crate) mod sandbox;
mod snapshots;
mod team;
mod usage;

use utoipa_axum::router::OpenApiRouter;

pub use docs::Document;

use crate::Api;

pub fn all() -> OpenApiRouter<Api> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .merge(projects::routes())
        .merge(sandbox::routes())
        .merge(snapshots::routes())
        .merge(events::routes())
        .merge(team::routes())
        .merge(usage::routes())
        .merge(endpoints::routes())
        .merge(env::routes())
        .merge(docs::routes())
}
