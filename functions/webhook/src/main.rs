//! The webhook Lambda: built once per cold start, then one router for every delivery.

use sandman::Sandman;
use sandman::secrets::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    sandman::telemetry::init("webhook");
    let sandman = Sandman::from_env(Function::Webhook).await?;
    lambda_http::run(sandman_webhook::router(sandman)).await
}
