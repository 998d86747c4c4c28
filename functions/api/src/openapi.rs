//! What the OpenAPI document says beyond its paths: title, version, and how to authenticate.

use http::StatusCode;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, RefOr};

pub fn base() -> OpenApi {
    let bearer = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("JWT")
        .description(Some(
            "A JWT naming the caller's team in the configured claim (default `team_id`); the admin claim (default `role`) set to `admin` makes the caller an admin of its team, who may set its budget.",
        ))
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

/// OpenAPI 3.1 requires a description on every response: where a route gives none, the status
/// code's reason phrase ("Not Found") stands in.
pub fn finish(mut document: OpenApi) -> OpenApi {
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            for (status, response) in operation.responses.responses.iter_mut() {
                if let RefOr::T(response) = response
                    && response.description.is_empty()
                {
                    let reason = status
                        .parse::<u16>()
                        .ok()
                        .and_then(|code| StatusCode::from_u16(code).ok())
                        .and_then(|code| code.canonical_reason());
                    response.description = reason.unwrap_or("Response").to_string();
                }
            }
        }
    }
    document
}
