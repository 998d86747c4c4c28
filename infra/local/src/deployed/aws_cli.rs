//! A deployed stack, read and exercised through the AWS CLI with the operator's credentials (the
//! guide installs it; `sandman-local` carries no CloudFormation, Lambda or EventBridge client):
//! its outputs and parameters (so the smoke test needs only the stack's name), a secret's field,
//! and its scheduled functions run as their schedules run them.
//!
//! [`ScheduledChecks`]: each rule is enabled, and the function, invoked with the rule's input
//! (`aws lambda invoke`), answers its report. The enforce schedule is proven by its effect instead
//! (the smoke's idle project); the reconciler and the pruner run every 10 minutes and hourly, too
//! rarely to wait for. The pruner is invoked as a dry run: it changes nothing.

use std::collections::HashMap;
use std::process::Command;

use serde_json::Value;

/// A stack's outputs, or its parameters' values, by key.
pub type Values = HashMap<String, String>;

#[derive(Debug, Clone)]
pub struct AwsCli {
    /// The command (`aws`; tests put a stand-in first on PATH, or name one).
    pub program: String,
    pub region: String,
}

impl AwsCli {
    pub fn new(region: String) -> AwsCli {
        AwsCli {
            program: std::env::var("SANDMAN_AWS_CLI").unwrap_or_else(|_| "aws".into()),
            region,
        }
    }

    /// The stack's outputs and its parameters' values, by key.
    pub fn stack(&self, stack: &str) -> Result<(Values, Values), String> {
        let text = self.run(&[
            "cloudformation",
            "describe-stacks",
            "--stack-name",
            stack,
            "--output",
            "json",
        ])?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| format!("describe-stacks: {e}"))?;
        let pairs = |list: &str, key: &str, value: &str| -> Values {
            doc["Stacks"][0][list]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    Some((
                        p[key].as_str()?.to_owned(),
                        p[value].as_str().unwrap_or_default().to_owned(),
                    ))
                })
                .collect()
        };
        Ok((
            pairs("Outputs", "OutputKey", "OutputValue"),
            pairs("Parameters", "ParameterKey", "ParameterValue"),
        ))
    }

    /// One field of a JSON secret (never printed).
    pub fn secret_field(&self, secret: &str, field: &str) -> Result<String, String> {
        let text = self.run(&[
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            secret,
            "--query",
            "SecretString",
            "--output",
            "text",
        ])?;
        let doc: Value = serde_json::from_str(text.trim()).map_err(|_| format!("secret {secret} is not JSON"))?;
        doc[field]
            .as_str()
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("secret {secret} has no {field}"))
    }

    /// The physical id of a resource of the stack.
    pub fn physical(&self, stack: &str, logical: &str) -> Result<String, String> {
        let id = self.run(&[
            "cloudformation",
            "describe-stack-resource",
            "--stack-name",
            stack,
            "--logical-resource-id",
            logical,
            "--query",
            "StackResourceDetail.PhysicalResourceId",
            "--output",
            "text",
        ])?;
        Ok(id.trim().to_owned())
    }

    /// `aws lambda invoke`: the function's answer, or its error.
    pub fn invoke(&self, function: &str, input: &str) -> Result<Value, String> {
        let out = std::env::temp_dir().join(format!("sandman-smoke-{}.json", ulid::Ulid::new()));
        let out_path = out.to_string_lossy().into_owned();
        let meta = self.run(&[
            "lambda",
            "invoke",
            "--function-name",
            function,
            "--cli-binary-format",
            "raw-in-base64-out",
            "--payload",
            input,
            &out_path,
        ])?;
        let answer = std::fs::read_to_string(&out).map_err(|e| format!("{function}'s answer: {e}"));
        let _ = std::fs::remove_file(&out);
        let answer: Value = serde_json::from_str(&answer?).unwrap_or(Value::Null);
        let meta: Value = serde_json::from_str(&meta).unwrap_or(Value::Null);
        if meta.get("FunctionError").is_some() {
            return Err(format!("{function} failed when invoked with {input}: {answer}"));
        }
        Ok(answer)
    }

    fn run(&self, args: &[&str]) -> Result<String, String> {
        let what = format!("{} {}", self.program, args[..2].join(" "));
        let output = Command::new(&self.program)
            .args(args)
            .args(["--region", &self.region])
            .env("AWS_PAGER", "")
            .output()
            .map_err(|e| format!("{what}: {e} (install the AWS CLI v2)"))?;
        if !output.status.success() {
            return Err(format!("{what}: {}", String::from_utf8_lossy(&output.stderr).trim()));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

pub struct ScheduledChecks {
    pub cli: AwsCli,
    pub stack: String,
}

/// Each check: the function's and its rule's logical ids, and the input to invoke it with.
const CHECKS: [(&str, &str, &str); 3] = [
    ("IdleEnforcerFunction", "IdleEnforcerFunctionEnforce", ""),
    (
        "IdleEnforcerFunction",
        "IdleEnforcerFunctionReconcile",
        r#"{"task":"reconcile"}"#,
    ),
    (
        "SnapshotPrunerFunction",
        "SnapshotPrunerFunctionPrune",
        r#"{"dryRun":true}"#,
    ),
];

impl ScheduledChecks {
    /// One line per schedule, or the first failure.
    pub fn run(&self) -> Result<Vec<String>, String> {
        let mut lines = Vec::new();
        for (function, rule, input) in CHECKS {
            let rule_name = self.cli.physical(&self.stack, rule)?;
            let state = self.cli.run(&[
                "events",
                "describe-rule",
                "--name",
                &rule_name,
                "--query",
                "State",
                "--output",
                "text",
            ])?;
            if state.trim() != "ENABLED" {
                return Err(format!("the schedule {rule_name} is {}, not ENABLED", state.trim()));
            }
            if input.is_empty() {
                lines.push(format!("rule {rule_name} is enabled"));
                continue;
            }
            let name = self.cli.physical(&self.stack, function)?;
            let answer = self.cli.invoke(&name, input)?;
            lines.push(format!(
                "rule {rule_name} is enabled; {name} invoked with {input} answered {}",
                summary(&answer)
            ));
        }
        Ok(lines)
    }
}

/// A report in one line: its counters.
fn summary(answer: &Value) -> String {
    if let Some(skipped) = answer.get("skipped") {
        return format!("skipped: {skipped}");
    }
    let report = answer.get("report").unwrap_or(answer);
    let counters: Vec<String> = report
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.is_number() || v.is_boolean())
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    counters.join(", ")
}
