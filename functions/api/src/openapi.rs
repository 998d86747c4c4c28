//! What the OpenAPI document says beyond its paths: title, version, and how to authenticate.

use http::StatusCode;
use sandman::domain::ID_PATTERN;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, ObjectBuilder, OpenApi, OpenApiBuilder, Ref, RefOr,
    ResponseBuilder, Schema, Type,
};

pub fn base() -> OpenApi {
    let bearer = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("JWT")
        .description(Some(
            "A JWT naming the caller's team in the configured claim (default `team_id`), its issuer and audience the deployment's, living at most `JWT_MAX_LIFETIME_SECS` (default a day). A token whose role claim (`JWT_ROLE_CLAIM`, default `roles`; a string or a list) holds the deployment's `JWT_ADMIN_ROLE` is a team admin's: it may set the team's E2B key and budget, register and remove webhook endpoints and make sandboxes public. With no `JWT_ADMIN_ROLE`, nobody is an admin. Each team's requests are rate limited: past the limit, 429 `rate_limited` with `Retry-After`.",
        ))
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Sandman")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("One E2B sandbox per project: opened on demand, paused when idle, resumed on activity, snapshotted and restored. Lifecycle policies, per project: busy-aware idle (`busyCpuPercent`, off by default: an idle sandbox whose CPU is above it is not paused, for at most `maxBusyDeferralSeconds`, default 7200), holds (`busyForSeconds` on activity, at most `maxBusyForSeconds`, default 3600) and the session-cap handoff (`capHandoff`, default `pause-resume`, when the deployment sets a cap). Every error is `{\"error\": {\"code\", \"message\"}}`."))
                .build(),
        )
        .components(Some(ComponentsBuilder::new().security_scheme("bearer", SecurityScheme::Http(bearer)).build()))
        .build()
}

/// What every route shares, declared once here rather than on each route: ids in the path carry
/// the pattern the core enforces, and the 400 (malformed id or query) and 413 (body over the
/// limit) that the extractors answer are documented wherever they can happen. OpenAPI 3.1 also
/// requires a description on every response: where a route gives none, the status code's reason
/// phrase ("Not Found") stands in.
pub fn finish(mut document: OpenApi) -> OpenApi {
    if let Some(components) = document.components.as_mut() {
        components
            .schemas
            .insert("IdleSettings".into(), RefOr::T(idle_settings()));
        if let Some(RefOr::T(Schema::Object(env))) = components.schemas.get_mut("EnvSettings")
            && let Some(RefOr::T(Schema::Object(vars))) = env.properties.get_mut("vars")
        {
            vars.property_names = Some(Box::new(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(ENV_NAME))
                    .into(),
            ));
            vars.max_properties = Some(100);
        }
    }
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            declare_shared_refusals(operation);
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

/// An outbound endpoint's id, as `routes/endpoints.rs` checks it.
const ENDPOINT_ID_PATTERN: &str = "^ep_[0-9a-z]{26}$";
/// A secret's name as `env/rules.rs` checks it (`^[A-Z_][A-Z0-9_]{0,63}$`, not `E2B_…`), spelled
/// without a lookahead so that any JSON Schema tool can generate from it.
const SECRET_NAME_IN_PATH: &str = "^(?:[A-DF-Z_][A-Z0-9_]{0,63}|E(?:[A-Z013-9_][A-Z0-9_]{0,62}|2(?:[AC-Z0-9_][A-Z0-9_]{0,61}|B(?:[A-Z0-9][A-Z0-9_]{0,60})?)?)?)$";
/// An env var's name (letters, digits and `_`, not starting with a digit, at most 128, not
/// `E2B_…` in any case), the same way.
const ENV_NAME: &str = "^(?:[A-DF-Za-df-z_][A-Za-z0-9_]{0,127}|[Ee](?:[A-Za-z013-9_][A-Za-z0-9_]{0,126}|2(?:[AC-Zac-z0-9_][A-Za-z0-9_]{0,125}|[Bb](?:[A-Za-z0-9][A-Za-z0-9_]{0,124})?)?)?)$";
/// A usage period: a month, `YYYY-MM`.
const PERIOD_PATTERN: &str = "^(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])$";

fn declare_shared_refusals(operation: &mut Operation) {
    let mut takes_input = false;
    for parameter in operation.parameters.iter_mut().flatten() {
        takes_input = true;
        let RefOr::T(parameter) = parameter else {
            continue;
        };
        let pattern = match (&parameter.parameter_in, parameter.name.as_str()) {
            (ParameterIn::Path, "endpointId") => ENDPOINT_ID_PATTERN,
            (ParameterIn::Path, "name") => SECRET_NAME_IN_PATH,
            (ParameterIn::Path, _) => ID_PATTERN,
            (ParameterIn::Query, "period") => PERIOD_PATTERN,
            _ => continue,
        };
        parameter.schema = Some(RefOr::T(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern))
                .min_length(Some(1))
                .max_length(Some(128))
                .into(),
        ));
    }
    let responses = &mut operation.responses.responses;
    if operation.security.is_some() {
        responses
            .entry("429".into())
            .or_insert_with(|| error_response("the team's request rate (`rate_limited`, with Retry-After) or a quota"));
    }
    if takes_input {
        responses
            .entry("400".into())
            .or_insert_with(|| error_response("the path or query is malformed"));
    }
    if operation.request_body.is_some() {
        responses
            .entry("400".into())
            .or_insert_with(|| error_response("the body is malformed"));
        responses
            .entry("413".into())
            .or_insert_with(|| error_response(&format!("the body is larger than {} bytes", crate::BODY_LIMIT)));
    }
}

/// `idle`: the fixed mode takes no bounds, the adaptive one may (each 120 to 86400 seconds; how
/// they fit each other and the deployment is settled by `settings/idle.rs`, not refused). One of
/// two shapes, which the derived schema cannot say.
fn idle_settings() -> Schema {
    let bound = serde_json::json!({"type": ["integer", "null"], "minimum": 120, "maximum": 86400});
    let document = serde_json::json!({
        "description": "How the idle timeout is chosen: `fixed` (the default), `idleTimeoutSeconds`; `adaptive`, learned from the project's own idle gaps within `minSeconds` (default 120) and `maxSeconds` (default 3600), kept under the session-cap handoff and, unless `minSeconds` is past it, under `sandboxTimeoutSeconds` less 300; `idleTimeoutSeconds` is then the timeout to start from (default 600). `GET` shows the bounds applied.",
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "mode": {"type": ["string", "null"], "enum": ["fixed", null]},
                    "minSeconds": {"type": "null"},
                    "maxSeconds": {"type": "null"}
                },
                "additionalProperties": false
            },
            {
                "type": "object",
                "required": ["mode"],
                "properties": {
                    "mode": {"type": "string", "enum": ["adaptive"]},
                    "minSeconds": bound,
                    "maxSeconds": bound
                },
                "additionalProperties": false
            }
        ]
    });
    serde_json::from_value(document).expect("the idle settings' schema is a schema")
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    let body = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content("application/json", body)
            .build(),
    )
}

/// The document as this deployment serves it: when the deployment allows a closed set of
/// templates, `templateId` lists them, so a request the document allows is not refused for its
/// template.
pub fn for_deployment(mut document: OpenApi, templates: Option<Vec<&str>>) -> OpenApi {
    let Some(templates) = templates else {
        return document;
    };
    let settings = document
        .components
        .as_mut()
        .and_then(|components| components.schemas.get_mut("ProjectSettings"));
    if let Some(RefOr::T(Schema::Object(settings))) = settings
        && let Some(RefOr::T(Schema::Object(template))) = settings.properties.get_mut("templateId")
    {
        template.enum_values = Some(templates.into_iter().map(Into::into).collect());
    }
    document
}
