//! The webhook Lambda: built once per cold start, then one router for every delivery.

use sandman::Sandman;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    sandman::telemetry::init("webhook");
    let sandman = Sandman::from_env().await?;
    if sandman.secrets.webhook_secrets.is_empty() {
        tracing::error!("no webhook secret is configured: every delivery will be refused");
    }
    lambda_http::run(sandman_webhook::router(sandman)).await
}
