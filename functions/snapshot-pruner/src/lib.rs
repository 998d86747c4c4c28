//! The snapshot pruner's Lambda handler: an EventBridge schedule (hourly) or a manual invocation
//! runs one retention tick. `{"dryRun": true}` as the input (a schedule's `Input`, or
//! `aws lambda invoke`) reports what would be deleted and changes nothing; without it,
//! `PRUNER_DRY_RUN` decides. The rules live in `sandman::retention`.

use lambda_runtime::{Diagnostic, LambdaEvent};
use sandman::Sandman;
use sandman::config::PrunerConfig;
use sandman::deadline::Deadline;
use sandman::retention::{PassOptions, PruneReport};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum PrunerError {
    /// Nothing was done: a malformed `dryRun` must not turn into a real run.
    #[error("invalid input: {0}")]
    BadInput(String),
    #[error(transparent)]
    Tick(#[from] sandman::Error),
}

impl From<PrunerError> for Diagnostic {
    fn from(err: PrunerError) -> Self {
        let error_type = match err {
            PrunerError::BadInput(_) => "PrunerError.BadInput",
            PrunerError::Tick(_) => "PrunerError.Tick",
        };
        Diagnostic {
            error_type: error_type.into(),
            error_message: err.to_string(),
        }
    }
}

/// The input fields the pruner reads; a scheduled event's other fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    dry_run: Option<bool>,
}

pub fn options(config: &PrunerConfig, payload: &Value) -> Result<PassOptions, PrunerError> {
    let input = match payload {
        Value::Null => Input::default(),
        Value::Object(_) => Input::deserialize(payload).map_err(|err| PrunerError::BadInput(err.to_string()))?,
        _ => {
            return Err(PrunerError::BadInput(
                "expected a JSON object such as {\"dryRun\": true}".into(),
            ));
        }
    };
    Ok(PassOptions {
        dry_run: input.dry_run.unwrap_or(config.dry_run),
    })
}

pub async fn handle(sandman: &Sandman, event: LambdaEvent<Value>) -> Result<PruneReport, PrunerError> {
    Deadline::scope_lambda(event.context.deadline, tick(sandman, &event.payload)).await
}

/// One tick for one invocation's input; emits the tick's metrics.
pub async fn tick(sandman: &Sandman, payload: &Value) -> Result<PruneReport, PrunerError> {
    let options = options(&sandman.config.pruner, payload)?;
    if !sandman.ensure_e2b_key().await {
        sandman::skip_without_e2b_key("snapshot-pruner");
        return Ok(PruneReport::default());
    }
    let report = sandman.prune(options).await?;
    report.metrics().emit();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn config(dry_run: bool) -> PrunerConfig {
        PrunerConfig {
            dry_run,
            tick_deadline: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_invocation_overrides_the_configured_mode() {
        assert!(options(&config(false), &json!({"dryRun": true})).unwrap().dry_run);
        assert!(!options(&config(true), &json!({"dryRun": false})).unwrap().dry_run);
    }

    #[test]
    fn a_scheduled_event_follows_the_configuration() {
        let scheduled = json!({"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        assert!(options(&config(true), &scheduled).unwrap().dry_run);
        assert!(!options(&config(false), &scheduled).unwrap().dry_run);
        assert!(!options(&config(false), &Value::Null).unwrap().dry_run);
    }

    #[test]
    fn a_malformed_dry_run_is_refused() {
        for bad in [json!({"dryRun": "yes"}), json!("prune"), json!([true])] {
            assert!(
                matches!(options(&config(false), &bad), Err(PrunerError::BadInput(_))),
                "{bad}"
            );
        }
    }
}
