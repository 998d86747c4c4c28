//! The API Lambda: config, clients and the token verifier once per cold start, then the router.

use sandman::Sandman;
use sandman::secrets::Function;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    sandman::telemetry::init("api");
    let sandman = Sandman::from_env(Function::Api).await?;
    lambda_http::run(sandman_api::app(sandman)?).await
}
