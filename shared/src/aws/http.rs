//! The AWS SDK's HTTP client over reqwest. The SDK hands over a request with its body in memory
//! (DynamoDB, KMS, Secrets Manager and SQS calls are small JSON), and takes the response the same
//! way; transport failures are sorted into the SDK's retry classes (timeout, I/O, other).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

type Timeouts = (Option<Duration>, Option<Duration>);

/// One pooled reqwest client per distinct timeout setting the SDK asks for (in practice one).
#[derive(Debug, Default, Clone)]
pub struct ReqwestHttpClient {
    connectors: Arc<Mutex<HashMap<Timeouts, SharedHttpConnector>>>,
}

impl HttpClient for ReqwestHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        let timeouts = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(PoisonError::into_inner);
        connectors
            .entry(timeouts)
            .or_insert_with(|| SharedHttpConnector::new(Connector::new(timeouts)))
            .clone()
    }
}

#[derive(Debug)]
struct Connector(Result<reqwest::Client, String>);

impl Connector {
    fn new((connect, read): Timeouts) -> Self {
        crate::crypto::install();
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(connect) = connect {
            builder = builder.connect_timeout(connect);
        }
        if let Some(read) = read {
            builder = builder.read_timeout(read);
        }
        Self(builder.build().map_err(|err| err.to_string()))
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.0.clone();
        HttpConnectorFuture::new(async move {
            let client = client.map_err(|err| ConnectorError::other(err.into(), None))?;
            send(&client, request).await
        })
    }
}

async fn send(client: &reqwest::Client, request: HttpRequest) -> Result<HttpResponse, ConnectorError> {
    let method =
        reqwest::Method::from_bytes(request.method().as_bytes()).map_err(|err| ConnectorError::user(err.into()))?;
    let body = request
        .body()
        .bytes()
        .ok_or_else(|| ConnectorError::user("a streaming request body cannot be sent".into()))?
        .to_vec();
    let mut outgoing = client.request(method, request.uri());
    for (name, value) in request.headers() {
        outgoing = outgoing.header(name, value);
    }
    let response = outgoing.body(body).send().await.map_err(transport)?;
    let status =
        StatusCode::try_from(response.status().as_u16()).map_err(|err| ConnectorError::other(err.into(), None))?;
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(transport)?;
    let mut answer = HttpResponse::new(status, SdkBody::from(body));
    for (name, value) in &headers {
        if let Ok(value) = value.to_str() {
            answer.headers_mut().append(name.as_str().to_owned(), value.to_owned());
        }
    }
    Ok(answer)
}

/// The SDK retries timeouts and I/O errors (a refused or reset connection); anything else is final.
fn transport(err: reqwest::Error) -> ConnectorError {
    if err.is_timeout() {
        ConnectorError::timeout(err.into())
    } else if err.is_connect() || err.is_request() || err.is_body() {
        ConnectorError::io(err.into())
    } else {
        ConnectorError::other(err.into(), None)
    }
}
