//! Logs and metrics. In Lambda: JSON log lines (one span per request or tick carries projectId /
//! sandboxId) and CloudWatch embedded-metric-format lines. Locally: readable text.

use std::collections::BTreeMap;
use std::io::Write;

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Call once at start-up. JSON when running in Lambda or when `LOG_FORMAT=json`.
pub fn init(function: &str) {
    let json = std::env::var("LOG_FORMAT")
        .map(|f| f == "json")
        .unwrap_or_else(|_| std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some());
    // `RUST_LOG` as `level` or `target=level,...` (tracing_subscriber's Targets): EnvFilter's
    // regex engine would add about N KB to every binary for span-field filters nobody sets.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(Level::INFO));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        let layer = fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .with_target(false);
        registry.with(layer).try_init()
    } else {
        registry.with(fmt::layer().compact().with_target(false)).try_init()
    };
    if result.is_ok() {
        tracing::debug!(function, "telemetry ready");
    }
}

/// The namespace every Sandman metric is written to.
pub const NAMESPACE: &str = "Sandman";

/// The variable that names the deployment (template.yaml sets it to the stack's name).
pub const STACK_VARIABLE: &str = "SANDMAN_STACK";

/// The stack whose metrics these are: `SANDMAN_STACK`, read once; `local` outside a deployment.
pub fn stack() -> &'static str {
    static STACK: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    STACK.get_or_init(|| {
        std::env::var(STACK_VARIABLE)
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "local".into())
    })
}

/// Counters and durations for one request or tick, emitted as one EMF line in namespace `Sandman`
/// with the dimensions `Function` (the binary) and `Stack` (the deployment), together: each name,
/// function and stack is one custom metric, so two functions' series never mix, nor do staging's
/// and production's in one account. There is no undimensioned copy: alarms and the dashboard read
/// the per-function series of their own stack.
#[derive(Debug, Default)]
pub struct Metrics {
    function: String,
    stack: String,
    values: BTreeMap<&'static str, (f64, &'static str)>,
}

impl Metrics {
    pub fn new(function: impl Into<String>) -> Self {
        Self::for_stack(function, stack())
    }

    pub fn for_stack(function: impl Into<String>, stack: impl Into<String>) -> Self {
        Self {
            function: function.into(),
            stack: stack.into(),
            values: BTreeMap::new(),
        }
    }

    pub fn count(&mut self, name: &'static str, n: u64) {
        let entry = self.values.entry(name).or_insert((0.0, "Count"));
        entry.0 += n as f64;
    }

    pub fn milliseconds(&mut self, name: &'static str, ms: f64) {
        self.values.insert(name, (ms, "Milliseconds"));
    }

    pub fn get(&self, name: &str) -> f64 {
        self.values.get(name).map(|(v, _)| *v).unwrap_or(0.0)
    }

    /// The EMF document (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
    pub fn to_emf(&self, timestamp_ms: i64) -> serde_json::Value {
        let definitions: Vec<_> = self
            .values
            .iter()
            .map(|(name, (_, unit))| serde_json::json!({"Name": name, "Unit": unit}))
            .collect();
        let mut doc = serde_json::json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [["Function", "Stack"]], "Metrics": definitions}]
            },
            "Function": self.function,
            "Stack": self.stack,
        });
        for (name, (value, _)) in &self.values {
            doc[*name] = serde_json::json!(value);
        }
        doc
    }

    pub fn emit(&self) {
        let now = time::OffsetDateTime::now_utc();
        let line = self.to_emf((now.unix_timestamp_nanos() / 1_000_000) as i64);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_declares_every_metric_it_carries() {
        let mut metrics = Metrics::for_stack("idle-enforcer", "prod");
        metrics.count("Paused", 2);
        metrics.count("Paused", 1);
        metrics.milliseconds("TickDurationMs", 12.5);
        let doc = metrics.to_emf(1_700_000_000_000);
        assert_eq!(doc["Paused"], 3.0);
        assert_eq!(doc["TickDurationMs"], 12.5);
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Sandman");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(
            (doc["Function"].as_str(), doc["Stack"].as_str()),
            (Some("idle-enforcer"), Some("prod"))
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Function", "Stack"]]),
            "one series per function, stack and name: two functions' (or stacks') TickDurationMs never mix"
        );
    }
}
