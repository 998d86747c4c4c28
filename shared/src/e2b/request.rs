//! One E2B call as the transport sees it, and E2B's answer.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};

use super::retry::Repeat;
use sandman_protocol::e2b::E2bError;

/// One logical call; `route` is the path template, used in logs instead of the concrete URL.
pub(crate) struct Request<'a> {
    pub method: Method,
    pub route: &'static str,
    pub path: Vec<&'a str>,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
    pub sandbox_id: Option<&'a str>,
    pub repeat: Repeat,
}

impl<'a> Request<'a> {
    /// A call that is safe to repeat; see the `with_*` / `not_idempotent` adjustments.
    pub fn new(method: Method, route: &'static str, path: &[&'a str]) -> Self {
        Self {
            method,
            route,
            path: path.to_vec(),
            query: Vec::new(),
            body: None,
            sandbox_id: None,
            repeat: Repeat::Safe,
        }
    }

    pub fn with_json<T: serde::Serialize>(mut self, body: &T) -> Result<Self, E2bError> {
        let bytes = serde_json::to_vec(body).map_err(|source| E2bError::Decode {
            route: self.route,
            detail: source.to_string(),
        })?;
        self.body = Some(bytes);
        Ok(self)
    }

    pub fn with_query(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }

    pub fn for_sandbox(mut self, sandbox_id: &'a str) -> Self {
        self.sandbox_id = Some(sandbox_id);
        self
    }

    /// The call creates something: repeat it only when E2B refused it outright.
    pub fn not_idempotent(mut self) -> Self {
        self.repeat = Repeat::OnlyIfRefused;
        self
    }

    /// The concrete URL under `base_url`; path segments are escaped (snapshot IDs hold `/`).
    pub fn url(&self, base_url: &Url) -> Url {
        let mut url = base_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(&self.path);
        }
        if !self.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &self.query {
                pairs.append_pair(name, value);
            }
        }
        url
    }
}

/// An answer, success or not.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json<T: serde::de::DeserializeOwned>(&self, route: &'static str) -> Result<T, E2bError> {
        serde_json::from_slice(&self.body).map_err(|source| E2bError::Decode {
            route,
            detail: source.to_string(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_urls_with_escaped_ids_and_queries() {
        let base_url = Url::parse("http://127.0.0.1:9/prefix/").unwrap();
        let request = Request {
            method: Method::DELETE,
            route: "DELETE /templates/{id}",
            path: vec!["templates", "team/snap:default"],
            query: vec![("metadata", "a=b&c=d".into())],
            body: None,
            sandbox_id: None,
            repeat: Repeat::Safe,
        };
        assert_eq!(
            request.url(&base_url).as_str(),
            "http://127.0.0.1:9/prefix/templates/team%2Fsnap:default?metadata=a%3Db%26c%3Dd"
        );
    }
}
