//! Trace readers.
//!
//! - **Plain CSV**: `project,timestamp,kind`, one activity a line. `timestamp` is unix seconds or
//!   RFC 3339; `kind` is kept for the reader's sake but every kind counts as activity. A first
//!   line whose timestamp does not parse is taken for a header.
//! - **Azure Functions 2019** (`invocations_per_function_md.anon.dNN.csv`): `HashOwner, HashApp,
//!   HashFunction, Trigger`, then 1440 per-minute invocation counts for day NN. A project is an
//!   application (owner and app), as in the paper; a minute with any invocation is one activity
//!   at its start. Several days' files make one trace, each placed at its day (from `dNN` in the
//!   file name, else the order given), day 1 on the simulator's Monday.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::synth::START;
use crate::trace::{ProjectTrace, Trace};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub source: String,
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.line, self.reason)
    }
}

impl std::error::Error for InputError {}

fn timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    text.parse::<i64>()
        .ok()
        .or_else(|| OffsetDateTime::parse(text, &Rfc3339).ok().map(|t| t.unix_timestamp()))
}

/// Reads a plain CSV trace (`source` names it in errors).
pub fn read_csv(source: &str, text: &str) -> Result<Trace, InputError> {
    let mut projects: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let error = |reason: &str| InputError {
            source: source.to_string(),
            line: i + 1,
            reason: reason.to_string(),
        };
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 3 {
            return Err(error("expected 3 fields: project,timestamp,kind"));
        }
        let Some(at) = timestamp(fields[1]) else {
            if i == 0 {
                continue;
            }
            return Err(error("timestamp is neither unix seconds nor RFC 3339"));
        };
        let project = fields[0].trim();
        if project.is_empty() {
            return Err(error("empty project"));
        }
        projects.entry(project.to_string()).or_default().push(at);
    }
    Ok(Trace {
        projects: projects
            .into_iter()
            .map(|(name, events)| ProjectTrace {
                name,
                kind: "csv".to_string(),
                events,
            })
            .collect(),
    }
    .normalized())
}

/// The day number in an Azure file name (`...dNN.csv`), 1-based.
pub fn azure_day(file_name: &str) -> Option<i64> {
    let stem = file_name.rsplit('/').next()?.strip_suffix(".csv")?;
    let digits = stem.rsplit_once(".d")?.1;
    digits.parse().ok().filter(|d| *d >= 1)
}

/// Adds one Azure Functions 2019 per-minute file for day `day` (1-based) to `trace`.
pub fn read_azure_day(source: &str, text: &str, day: i64, trace: &mut Trace) -> Result<(), InputError> {
    let mut apps: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let day_start = START + (day - 1) * 86_400;
    for (i, line) in text.lines().enumerate() {
        let error = |reason: String| InputError {
            source: source.to_string(),
            line: i + 1,
            reason,
        };
        let fields: Vec<&str> = line.trim().split(',').collect();
        if i == 0 && fields.first().is_some_and(|f| f.trim() == "HashOwner") {
            continue;
        }
        if fields.len() == 1 && fields[0].is_empty() {
            continue;
        }
        if fields.len() != 4 + 1440 {
            return Err(error(format!("expected 1444 fields, found {}", fields.len())));
        }
        let events = apps.entry(format!("{}/{}", fields[0], fields[1])).or_default();
        for (minute, count) in fields[4..].iter().enumerate() {
            let count: f64 = count
                .trim()
                .parse()
                .map_err(|_| error(format!("minute {}: not a count: {count:?}", minute + 1)))?;
            if count > 0.0 {
                events.push(day_start + 60 * minute as i64);
            }
        }
    }
    for (name, events) in apps {
        match trace.projects.iter_mut().find(|p| p.name == name) {
            Some(project) => project.events.extend(events),
            None => trace.projects.push(ProjectTrace {
                name,
                kind: "azure".to_string(),
                events,
            }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_header_unix_and_rfc3339() {
        let text = "project,timestamp,kind\na,1799020800,open\nb,2027-01-04T00:01:00Z,exec\na,1799020860,heartbeat\n";
        let trace = read_csv("t.csv", text).unwrap();
        assert_eq!(trace.projects.len(), 2);
        assert_eq!(trace.projects[0].events, vec![START, START + 60]);
        assert_eq!(trace.projects[1].events, vec![START + 60]);
    }

    #[test]
    fn csv_errors_name_the_line() {
        let error = read_csv("t.csv", "a,1,open\na,yesterday,open\n").unwrap_err();
        assert_eq!((error.line, error.to_string().contains("RFC 3339")), (2, true));
        assert_eq!(read_csv("t.csv", "a,1\n").unwrap_err().line, 1);
    }

    fn azure_row(owner: &str, app: &str, function: &str, minutes: &[usize]) -> String {
        let mut counts = vec!["0"; 1440];
        for m in minutes {
            counts[*m] = "3";
        }
        format!("{owner},{app},{function},http,{}", counts.join(","))
    }

    #[test]
    fn azure_apps_merge_their_functions_and_days() {
        let header = format!(
            "HashOwner,HashApp,HashFunction,Trigger,{}",
            (1..=1440).map(|m| m.to_string()).collect::<Vec<_>>().join(",")
        );
        let day1 = [
            header.clone(),
            azure_row("o", "a", "f1", &[0, 5]),
            azure_row("o", "a", "f2", &[5, 6]),
        ]
        .join("\n");
        let day2 = [header, azure_row("o", "a", "f1", &[1439])].join("\n");
        assert_eq!(azure_day("x/invocations_per_function_md.anon.d02.csv"), Some(2));
        let mut trace = Trace::default();
        read_azure_day("d01", &day1, 1, &mut trace).unwrap();
        read_azure_day("d02", &day2, 2, &mut trace).unwrap();
        let trace = trace.normalized();
        assert_eq!(trace.projects.len(), 1);
        assert_eq!(
            trace.projects[0].events,
            vec![START, START + 300, START + 360, START + 86_400 + 1439 * 60]
        );
        let short = read_azure_day("bad", "o,a,f,http,1,2", 1, &mut Trace::default()).unwrap_err();
        assert!(short.reason.contains("1444"), "{short}");
    }
}
