//! The metrics the stack's alarms and dashboards read.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::Deployment;

/// One metric an alarm or a dashboard widget reads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MetricRead {
    /// The alarm's or dashboard's logical id.
    pub reader: String,
    pub namespace: String,
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
}

/// A metric an `AWS::Logs::MetricFilter` writes from log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricFilter {
    pub reader: String,
    pub namespace: String,
    pub name: String,
    /// Each dimension's value as it is filled in: a field selector (`$.stack`) is read from the
    /// access log format of the stage whose log group the filter reads.
    pub dimensions: BTreeMap<String, String>,
}

impl Deployment {
    /// Every metric the template's metric filters write. A dimension read from a log field is
    /// filled in from the field's literal value in the stage's access log format.
    pub fn metric_filters(&self) -> Result<Vec<MetricFilter>, String> {
        let mut filters = Vec::new();
        for (id, resource) in &self.resources {
            if resource.get("Type").and_then(Value::as_str) != Some("AWS::Logs::MetricFilter") {
                continue;
            }
            let reader = id.as_str().unwrap_or_default().to_owned();
            let properties = resource.get("Properties").cloned().unwrap_or(Value::Null);
            let format = self.access_log_format().unwrap_or_default();
            for transformation in properties
                .get("MetricTransformations")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let text = |name: &str| transformation.get(name).and_then(|v| self.resolve(v));
                let mut dimensions = BTreeMap::new();
                for dimension in transformation
                    .get("Dimensions")
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                {
                    let key = dimension.get("Key").and_then(|v| self.resolve(v)).unwrap_or_default();
                    let selector = dimension.get("Value").and_then(|v| self.resolve(v)).unwrap_or_default();
                    let field = selector
                        .strip_prefix("$.")
                        .ok_or(format!("{reader}: {selector} is not a field"))?;
                    let value = literal_field(&format, field)
                        .ok_or(format!("{reader}: the access log format has no literal field {field}"))?;
                    dimensions.insert(key, value);
                }
                filters.push(MetricFilter {
                    reader: reader.clone(),
                    namespace: text("MetricNamespace").ok_or(format!("{reader}: no namespace"))?,
                    name: text("MetricName").ok_or(format!("{reader}: no metric name"))?,
                    dimensions,
                });
            }
        }
        Ok(filters)
    }

    /// The HTTP API stage's access log format, resolved.
    pub fn access_log_format(&self) -> Option<String> {
        self.resources.values().find_map(|resource| {
            (resource.get("Type")?.as_str()? == "AWS::ApiGatewayV2::Stage")
                .then(|| resource.get("Properties")?.get("AccessLogSettings")?.get("Format"))
                .flatten()
                .and_then(|format| self.resolve(format))
        })
    }

    /// Every metric read by an `AWS::CloudWatch::Alarm` or an `AWS::CloudWatch::Dashboard`.
    pub fn metric_reads(&self) -> Result<Vec<MetricRead>, String> {
        let mut reads = Vec::new();
        for (id, resource) in &self.resources {
            let reader = id.as_str().unwrap_or_default().to_owned();
            let properties = resource.get("Properties").cloned().unwrap_or(Value::Null);
            match resource.get("Type").and_then(Value::as_str) {
                Some("AWS::CloudWatch::Alarm") => reads.push(self.alarm_read(reader, &properties)?),
                Some("AWS::CloudWatch::Dashboard") => {
                    let body = properties
                        .get("DashboardBody")
                        .and_then(|b| self.resolve(b))
                        .ok_or_else(|| format!("{reader}: no DashboardBody"))?;
                    reads.extend(dashboard_reads(&reader, &body)?);
                }
                _ => {}
            }
        }
        Ok(reads)
    }

    fn alarm_read(&self, reader: String, properties: &Value) -> Result<MetricRead, String> {
        let field = |name: &str| {
            properties
                .get(name)
                .and_then(|v| self.resolve(v))
                .ok_or_else(|| format!("{reader}: no {name} (metric-math alarms are not read here)"))
        };
        let mut dimensions = BTreeMap::new();
        for dimension in properties
            .get("Dimensions")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let name = dimension.get("Name").and_then(|v| self.resolve(v));
            let value = dimension.get("Value").and_then(|v| self.resolve(v));
            if let (Some(name), Some(value)) = (name, value) {
                dimensions.insert(name, value);
            }
        }
        Ok(MetricRead {
            namespace: field("Namespace")?,
            name: field("MetricName")?,
            dimensions,
            reader,
        })
    }
}

/// `"field":"literal"` in a JSON log format (a field whose value is no `$context` variable).
fn literal_field(format: &str, field: &str) -> Option<String> {
    let start = format.find(&format!("\"{field}\":\""))? + field.len() + 4;
    let value = &format[start..start + format[start..].find('"')?];
    (!value.contains('$')).then(|| value.to_owned())
}

/// `["Namespace", "Name", "Dim", "value", …, {options}]`, the dashboard's metric arrays; the
/// `"."` shorthand for "same as the line above" is refused, so every line says what it reads.
fn dashboard_reads(reader: &str, body: &str) -> Result<Vec<MetricRead>, String> {
    let body: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("{reader}: body is not JSON: {e}"))?;
    let mut reads = Vec::new();
    let widgets = body["widgets"]
        .as_array()
        .ok_or_else(|| format!("{reader}: no widgets"))?;
    for widget in widgets {
        for line in widget["properties"]["metrics"].as_array().into_iter().flatten() {
            let words: Vec<&str> = line
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(serde_json::Value::as_str)
                .collect();
            if words.is_empty() {
                continue; // an expression line
            }
            if words.contains(&".") || words.len() < 2 || !words.len().is_multiple_of(2) {
                return Err(format!(
                    "{reader}: metric line {line} is not [namespace, name, dim, value, …]"
                ));
            }
            reads.push(MetricRead {
                reader: reader.to_owned(),
                namespace: words[0].to_owned(),
                name: words[1].to_owned(),
                dimensions: words[2..]
                    .chunks(2)
                    .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
                    .collect(),
            });
        }
    }
    Ok(reads)
}
