//! The deployed functions, built over one `Sandman`: the very routers and handlers Lambda runs,
//! each over its own instance of the core (`Sandman::as_function`), so every AWS call is recorded
//! under the function that made it (`SANDMAN_RECORD_AWS_CALLS`, for the IAM check).

use std::collections::HashMap;
use std::sync::Arc;

use lambda_runtime::{Context, LambdaEvent};
use sandman::Sandman;
use sandman::auth::Verifier;
use sandman::secrets::Function;

use crate::stack::{Functions, JobFn};

pub fn functions(sandman: &Sandman) -> Result<Functions, String> {
    let verifier = Verifier::new(&sandman.config.auth, &sandman.secrets).map_err(|e| format!("JWT verifier: {e}"))?;
    let enforcer = sandman.as_function(Function::IdleEnforcer);
    let pruner = sandman.as_function(Function::SnapshotPruner);
    let idle_enforcer: JobFn = Arc::new(move |input| {
        let sandman = enforcer.clone();
        Box::pin(async move {
            sandman_idle_enforcer::handle(&sandman, LambdaEvent::new(input, Context::default()))
                .await
                .map_err(|e| e.to_string())
        })
    });
    let snapshot_pruner: JobFn = Arc::new(move |input| {
        let sandman = pruner.clone();
        Box::pin(async move {
            let report = sandman_snapshot_pruner::handle(&sandman, LambdaEvent::new(input, Context::default()))
                .await
                .map_err(|e| e.to_string())?;
            serde_json::to_value(report).map_err(|e| e.to_string())
        })
    });
    Ok(Functions {
        api: sandman_api::router(sandman.as_function(Function::Api), verifier),
        webhook: sandman_webhook::router(sandman.as_function(Function::Webhook)),
        jobs: HashMap::from([
            ("idle-enforcer".to_string(), idle_enforcer),
            ("snapshot-pruner".to_string(), snapshot_pruner),
        ]),
    })
}
