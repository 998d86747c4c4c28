//! Hourly (EventBridge): one retention tick over the projects due for one.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use sandman::Sandman;
use sandman::secrets::Function;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    sandman::telemetry::init("snapshot-pruner");
    let sandman = Sandman::from_env(Function::SnapshotPruner).await?;
    run(service_fn(|event: LambdaEvent<Value>| {
        sandman_snapshot_pruner::handle(&sandman, event)
    }))
    .await
}
