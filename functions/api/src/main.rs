//! The API Lambda: config, clients and the token verifier once per cold start, then the router.

use sandman::Sandman;
use sandman::auth::Verifier;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    sandman::telemetry::init("api");
    let sandman = Sandman::from_env().await?;
    let verifier = Verifier::new(&sandman.config.auth, &sandman.secrets)?;
    lambda_http::run(sandman_api::router(sandman, verifier)).await
}
