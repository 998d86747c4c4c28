//! The HTTP API's CORS as template.yaml configures API Gateway (`x-amazon-apigateway-cors` in the
//! API's body), for the local stack: API Gateway answers a browser's preflight itself and adds the
//! CORS headers to every answer from an allowed origin; the function knows nothing of CORS. The
//! local stack does the same with these settings, so the smoke test's CORS check runs against the
//! template's own headers in `make test`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_yaml::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: u64,
}

impl Cors {
    /// The template's CORS with `origins` as `CorsAllowedOrigins` (comma-separated, spaces
    /// ignored); `None` when there are none, as the template turns CORS off.
    pub fn from_template(template: &str, origins: &str) -> Result<Option<Cors>, String> {
        let origins: Vec<String> = origins
            .replace(' ', "")
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect();
        if origins.is_empty() {
            return Ok(None);
        }
        let doc: Value = serde_yaml::from_str(template).map_err(|e| e.to_string())?;
        let cors = doc
            .get("Resources")
            .and_then(|r| r.get("HttpApi"))
            .and_then(|api| api.get("Properties"))
            .and_then(|p| p.get("Body"))
            .and_then(|body| body.get("x-amazon-apigateway-cors"))
            .ok_or("the HTTP API's body has no x-amazon-apigateway-cors")?;
        // `!If [HasCorsOrigins, {settings}, !Ref AWS::NoValue]`: the settings are the second item.
        let settings = match cors {
            Value::Tagged(tagged) => tagged.value.as_sequence().and_then(|s| s.get(1)).cloned(),
            other => Some(other.clone()),
        }
        .ok_or("x-amazon-apigateway-cors is not !If [condition, settings, NoValue]")?;
        let list = |name: &str| -> Vec<String> {
            settings
                .get(name)
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect()
        };
        Ok(Some(Cors {
            allow_origins: origins,
            allow_methods: list("allowMethods").iter().map(|m| m.to_ascii_uppercase()).collect(),
            allow_headers: list("allowHeaders"),
            expose_headers: list("exposeHeaders"),
            max_age: settings.get("maxAge").and_then(Value::as_u64).unwrap_or(0),
        }))
    }

    fn allows(&self, origin: &str) -> bool {
        self.allow_origins.iter().any(|o| o == "*" || o == origin)
    }
}

/// The middleware: `axum::middleware::from_fn_with_state(Arc::new(cors), cors::layer)`.
pub async fn layer(State(cors): State<Arc<Cors>>, request: Request, next: Next) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .filter(|o| cors.allows(o))
        .map(str::to_owned);
    let preflight =
        request.method() == Method::OPTIONS && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let Some(origin) = origin else {
        return response;
    };
    let headers = response.headers_mut();
    let value = |text: &str| HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static(""));
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value(&origin));
    headers.insert(header::VARY, HeaderValue::from_static("origin"));
    if preflight {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            value(&cors.allow_methods.join(",")),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            value(&cors.allow_headers.join(",")),
        );
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, value(&cors.max_age.to_string()));
    } else if !cors.expose_headers.is_empty() {
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            value(&cors.expose_headers.join(",")),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_cors_lets_the_client_poll_with_etags() {
        let cors = Cors::from_template(crate::table::TEMPLATE, "https://a.example.com, https://b.example.com")
            .unwrap()
            .expect("CORS is on with origins");
        assert_eq!(cors.allow_origins, ["https://a.example.com", "https://b.example.com"]);
        assert!(cors.allow_headers.contains(&"if-none-match".to_owned()), "{cors:?}");
        assert!(cors.expose_headers.contains(&"etag".to_owned()), "{cors:?}");
        assert_eq!(Cors::from_template(crate::table::TEMPLATE, " ").unwrap(), None);
    }
}
