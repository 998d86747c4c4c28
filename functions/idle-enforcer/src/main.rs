use lambda_runtime::{LambdaEvent, service_fn};
use sandman::Sandman;
use sandman::secrets::Function;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    sandman::telemetry::init("idle-enforcer");
    let sandman = Sandman::from_env(Function::IdleEnforcer).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        sandman_idle_enforcer::handle(&sandman, event)
    }))
    .await
}
