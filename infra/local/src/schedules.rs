//! The EventBridge schedules of `template.yaml`, so local timers tick exactly as deployed ones.

use std::time::Duration;

use serde_yaml::Value;

use crate::table::TEMPLATE;

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The function's binary (`BuildProperties.Binary`), e.g. `idle-enforcer`.
    pub binary: String,
    /// The event's logical name in the template, e.g. `Enforce`.
    pub event: String,
    pub every: Duration,
    /// The event's `Input`, or the scheduled-event shape EventBridge sends without one.
    pub input: serde_json::Value,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScheduleError {
    #[error("the template is not valid YAML: {0}")]
    Yaml(String),
    #[error("{event}: schedule {expression:?} is not a rate(N unit) expression")]
    Expression { event: String, expression: String },
    #[error("{event}: Input is not JSON: {message}")]
    Input { event: String, message: String },
}

pub fn from_template() -> Result<Vec<Schedule>, ScheduleError> {
    parse(TEMPLATE)
}

pub fn parse(template: &str) -> Result<Vec<Schedule>, ScheduleError> {
    let doc: Value = serde_yaml::from_str(template).map_err(|e| ScheduleError::Yaml(e.to_string()))?;
    let mut schedules = Vec::new();
    let Some(resources) = doc.get("Resources").and_then(Value::as_mapping) else {
        return Ok(schedules);
    };
    for resource in resources.values() {
        let binary = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Value::as_str);
        let events = resource
            .get("Properties")
            .and_then(|p| p.get("Events"))
            .and_then(Value::as_mapping);
        let (Some(binary), Some(events)) = (binary, events) else {
            continue;
        };
        for (name, event) in events {
            if event.get("Type").and_then(Value::as_str) != Some("Schedule") {
                continue;
            }
            let event_name = name.as_str().unwrap_or_default().to_string();
            let properties = event.get("Properties");
            let expression = properties
                .and_then(|p| p.get("Schedule"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let every = rate(expression).ok_or_else(|| ScheduleError::Expression {
                event: event_name.clone(),
                expression: expression.into(),
            })?;
            let input = match properties.and_then(|p| p.get("Input")).and_then(Value::as_str) {
                Some(json) => serde_json::from_str(json).map_err(|e| ScheduleError::Input {
                    event: event_name.clone(),
                    message: e.to_string(),
                })?,
                None => scheduled_event(),
            };
            schedules.push(Schedule {
                binary: binary.to_string(),
                event: event_name,
                every,
                input,
            });
        }
    }
    Ok(schedules)
}

/// `rate(2 minutes)` -> 120 s.
fn rate(expression: &str) -> Option<Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (count, unit) = inner.trim().split_once(' ')?;
    let count: u64 = count.parse().ok().filter(|n| *n > 0)?;
    let seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(count * seconds))
}

/// What EventBridge delivers for a schedule without `Input`.
fn scheduled_event() -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": ulid::Ulid::new().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "region": "us-east-1",
        "resources": [],
        "detail": {}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_schedule_of_the_template() {
        let schedules = from_template().unwrap();
        let find = |binary: &str, every: u64| {
            schedules
                .iter()
                .find(|s| s.binary == binary && s.every == Duration::from_secs(every))
        };
        assert_eq!(
            find("idle-enforcer", 120).map(|s| s.input["detail-type"].clone()),
            Some("Scheduled Event".into())
        );
        assert_eq!(
            find("idle-enforcer", 600).map(|s| s.input.clone()),
            Some(serde_json::json!({"task": "reconcile"}))
        );
        assert!(find("snapshot-pruner", 3600).is_some());
        assert_eq!(schedules.len(), 3);
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        assert_eq!(rate("rate(5 minutes)"), Some(Duration::from_secs(300)));
        assert_eq!(rate("rate(1 hour)"), Some(Duration::from_secs(3600)));
        assert_eq!(rate("cron(0 12 * * ? *)"), None);
        assert_eq!(rate("rate(0 minutes)"), None);
    }
}
