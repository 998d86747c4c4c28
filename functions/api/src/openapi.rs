//! What the OpenAPI document says beyond its paths: title, version, and how to authenticate.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder};

pub fn base() -> OpenApi {
    let bearer = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("JWT")
        .description(Some("A JWT naming the caller's team in the configured claim (default `team_id`)."))
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Sandman")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("One E2B sandbox per project: opened on demand, paused when idle, resumed on activity, snapshotted and restored. Every error is `{\"error\": {\"code\", \"message\"}}`."))
                .build(),
        )
        .components(Some(ComponentsBuilder::new().security_scheme("bearer", SecurityScheme::Http(bearer)).build()))
        .build()
}
