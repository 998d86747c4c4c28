//! Emulator settings: built in code by tests, or from the environment by the binary.

use std::time::Duration;

/// One E2B team and the API key that authenticates as it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamAccount {
    pub team_id: String,
    pub api_key: String,
}

impl TeamAccount {
    pub fn new(team_id: impl Into<String>, api_key: impl Into<String>) -> Self {
        Self {
            team_id: team_id.into(),
            api_key: api_key.into(),
        }
    }
}

pub const DEFAULT_TEAM_ID: &str = "team-local";
pub const DEFAULT_API_KEY: &str = "e2b_local_emulator_key";

#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// 0 picks any free port. The emulator always binds 127.0.0.1.
    pub port: u16,
    pub teams: Vec<TeamAccount>,
    pub webhook_retry_delay: Duration,
    /// Retries after the first attempt.
    pub webhook_max_retries: u32,
    /// How long one delivery attempt may take before it counts as failed.
    pub webhook_timeout: Duration,
    /// Paused sandboxes are deleted (with a `killed` event) this long after pausing.
    pub paused_retention: Option<Duration>,
    /// How often real time is checked for expiries.
    pub sweep_interval: Duration,
    /// How long a pause keeps the sandbox mid-transition (a concurrent pause gets 409).
    pub pause_duration: Duration,
    /// How long a snapshot keeps the sandbox mid-transition.
    pub snapshot_duration: Duration,
    /// Longest timeout a create, connect or set-timeout may ask for (E2B's plan cap).
    pub max_timeout: Duration,
    /// E2B's cap on one continuous run (1 h Hobby, 24 h Pro): a running sandbox is killed this
    /// long after it started or last resumed. `None` (the default) never caps.
    pub session_cap: Option<Duration>,
    /// Seeds the draws of faults' `error_rate`, so a seeded run fails the same calls; `None`
    /// draws from entropy.
    pub fault_seed: Option<u64>,
    /// Whether the account has E2B's secrets API (`/secrets`); off, its routes answer 404.
    pub secrets_api: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            port: 0,
            teams: vec![TeamAccount::new(DEFAULT_TEAM_ID, DEFAULT_API_KEY)],
            webhook_retry_delay: Duration::from_secs(10),
            webhook_max_retries: 3,
            webhook_timeout: Duration::from_secs(10),
            paused_retention: None,
            sweep_interval: Duration::from_millis(250),
            pause_duration: Duration::ZERO,
            snapshot_duration: Duration::from_millis(50),
            max_timeout: Duration::from_secs(24 * 3600),
            session_cap: None,
            fault_seed: None,
            secrets_api: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} must be {expected}, got {value:?}")]
    Invalid {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
}

impl EmulatorConfig {
    /// Reads `E2B_EMULATOR_*` variables over the defaults (see the binary's `--help`).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(value) = lookup("E2B_EMULATOR_PORT") {
            config.port = parse_number("E2B_EMULATOR_PORT", &value)?;
        }
        if let Some(value) = lookup("E2B_EMULATOR_TEAMS") {
            config.teams = parse_teams(&value)?;
        } else if let Some(key) = lookup("E2B_EMULATOR_API_KEY") {
            config.teams = vec![TeamAccount::new(DEFAULT_TEAM_ID, key)];
        }
        if let Some(value) = lookup("E2B_EMULATOR_WEBHOOK_RETRY_DELAY_MS") {
            config.webhook_retry_delay = millis("E2B_EMULATOR_WEBHOOK_RETRY_DELAY_MS", &value)?;
        }
        if let Some(value) = lookup("E2B_EMULATOR_WEBHOOK_MAX_RETRIES") {
            config.webhook_max_retries = parse_number("E2B_EMULATOR_WEBHOOK_MAX_RETRIES", &value)?;
        }
        if let Some(value) = lookup("E2B_EMULATOR_WEBHOOK_TIMEOUT_MS") {
            config.webhook_timeout = millis("E2B_EMULATOR_WEBHOOK_TIMEOUT_MS", &value)?;
        }
        if let Some(value) = lookup("E2B_EMULATOR_PAUSED_RETENTION_SECS") {
            let secs: u64 = parse_number("E2B_EMULATOR_PAUSED_RETENTION_SECS", &value)?;
            config.paused_retention = Some(Duration::from_secs(secs));
        }
        if let Some(value) = lookup("E2B_EMULATOR_SWEEP_INTERVAL_MS") {
            config.sweep_interval = millis("E2B_EMULATOR_SWEEP_INTERVAL_MS", &value)?;
        }
        if let Some(value) = lookup("E2B_EMULATOR_PAUSE_DURATION_MS") {
            config.pause_duration = millis("E2B_EMULATOR_PAUSE_DURATION_MS", &value)?;
        }
        if let Some(value) = lookup("E2B_EMULATOR_SESSION_CAP_SECS") {
            let secs: u64 = parse_number("E2B_EMULATOR_SESSION_CAP_SECS", &value)?;
            config.session_cap = Some(Duration::from_secs(secs));
        }
        if let Some(value) = lookup("E2B_EMULATOR_SECRETS_API") {
            config.secrets_api = value.trim() != "false";
        }
        if let Some(value) = lookup("E2B_EMULATOR_SNAPSHOT_DURATION_MS") {
            config.snapshot_duration = millis("E2B_EMULATOR_SNAPSHOT_DURATION_MS", &value)?;
        }
        Ok(config)
    }
}

fn parse_number<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::Invalid {
        name,
        expected: "a non-negative integer",
        value: value.to_owned(),
    })
}

fn millis(name: &'static str, value: &str) -> Result<Duration, ConfigError> {
    parse_number(name, value).map(Duration::from_millis)
}

/// `team-a:key-a,team-b:key-b`
fn parse_teams(value: &str) -> Result<Vec<TeamAccount>, ConfigError> {
    let invalid = || ConfigError::Invalid {
        name: "E2B_EMULATOR_TEAMS",
        expected: "a comma-separated list of team_id:api_key",
        value: value.to_owned(),
    };
    let teams = value
        .split(',')
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            let (team, key) = entry.trim().split_once(':').ok_or_else(invalid)?;
            if team.is_empty() || key.is_empty() {
                return Err(invalid());
            }
            Ok(TeamAccount::new(team, key))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if teams.is_empty() {
        return Err(invalid());
    }
    Ok(teams)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_teams_and_durations() {
        let config = EmulatorConfig::from_lookup(|name| match name {
            "E2B_EMULATOR_TEAMS" => Some("a:ka, b:kb".into()),
            "E2B_EMULATOR_PAUSED_RETENTION_SECS" => Some("60".into()),
            "E2B_EMULATOR_SESSION_CAP_SECS" => Some("3600".into()),
            _ => None,
        })
        .expect("valid config");
        assert_eq!(
            config.teams,
            vec![TeamAccount::new("a", "ka"), TeamAccount::new("b", "kb")]
        );
        assert_eq!(config.paused_retention, Some(Duration::from_secs(60)));
        assert_eq!(config.session_cap, Some(Duration::from_secs(3600)));
        assert_eq!(EmulatorConfig::default().session_cap, None, "off unless asked for");
    }

    #[test]
    fn rejects_malformed_teams() {
        let result = EmulatorConfig::from_lookup(|name| (name == "E2B_EMULATOR_TEAMS").then(|| "no-colon".to_owned()));
        assert!(result.is_err());
    }
}
