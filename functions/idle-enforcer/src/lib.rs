//! The idle enforcer's Lambda handler. EventBridge invokes it every 2 minutes with a scheduled
//! event (an enforce tick, which also pauses the sandboxes of teams whose budget was reached) and every 10 minutes with `{"task":"reconcile"}` (template.yaml).

use lambda_runtime::LambdaEvent;
use sandman::Sandman;
use sandman::deadline::Deadline;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Enforce,
    Reconcile,
}

impl Task {
    /// `{"task":"reconcile"}` reconciles; any other input (the scheduled event) is an enforce tick.
    pub fn of(payload: &Value) -> Task {
        match payload.get("task").and_then(Value::as_str) {
            Some("reconcile") => Task::Reconcile,
            _ => Task::Enforce,
        }
    }
}

/// The Lambda handler: the payload is all it needs.
pub async fn handle(sandman: &Sandman, event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    Deadline::scope_lambda(event.context.deadline, run(sandman, &event.payload)).await
}

/// Runs the task, emits its metrics, and answers its report. Fails (so the invocation counts as
/// an error and lands in the dead-letter queue) only when the table could not be read.
pub async fn run(sandman: &Sandman, payload: &Value) -> Result<Value, lambda_runtime::Error> {
    if !sandman.ensure_e2b_key().await {
        return Ok(sandman::skip_without_e2b_key("idle-enforcer"));
    }
    match Task::of(payload) {
        Task::Enforce => {
            // Each pass boxed: their futures are deep, and the handler's would be deeper still.
            let report = Box::pin(sandman.enforce_idle()).await;
            report.metrics().emit();
            // Teams whose budget was reached: their running sandboxes are paused (one query when none).
            let budgets = Box::pin(sandman.enforce_budgets()).await;
            if report.read_errors > 0 {
                return Err(format!("{} idle-index read(s) failed; see the logs", report.read_errors).into());
            }
            let budgets = budgets.map_err(|err| format!("budgets could not be enforced: {err}"))?;
            Ok(serde_json::json!({ "task": "enforce", "report": report, "budgets": budgets }))
        }
        Task::Reconcile => {
            let report = Box::pin(sandman.reconcile()).await;
            report.metrics().emit();
            if report.aborted {
                return Err("the running sessions could not be read; nothing was reconciled".into());
            }
            Ok(serde_json::json!({ "task": "reconcile", "report": report }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../../tests/fixtures/scheduled/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn the_scheduled_event_enforces_and_the_reconcile_input_reconciles() {
        assert_eq!(Task::of(&fixture("enforce.json")), Task::Enforce);
        assert_eq!(Task::of(&fixture("reconcile.json")), Task::Reconcile);
        assert_eq!(Task::of(&serde_json::json!({"task": "other"})), Task::Enforce);
        assert_eq!(Task::of(&Value::Null), Task::Enforce);
    }
}
