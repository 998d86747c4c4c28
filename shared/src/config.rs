//! Configuration, parsed once per cold start. A missing or malformed variable fails start-up with
//! its name; secrets are not here (see `secrets.rs`).

use std::time::Duration;

use crate::e2b::is_loopback;
use crate::secrets::SecretKind;
pub use crate::secrets::{SecretArns, SecretsSource};
use crate::templates::{DEFAULT_TEMPLATES, TemplatePolicy};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("environment variable {name} is required {because}")]
    MissingFor { name: &'static str, because: &'static str },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub team_claim: String,
    pub jwks_url: Option<String>,
    /// HS256 tokens are accepted only when the deployment says so (`JWT_HS256=true`), never
    /// merely because a secret exists; beside a JWKS only with `JWT_HS256_WITH_JWKS=true`.
    pub hs256: bool,
    /// Keys fetched from the JWKS are not used past this age: after it they must be fetched again.
    pub jwks_max_age: Duration,
    pub admin: AdminRole,
    /// The longest a token may live (`JWT_MAX_LIFETIME_SECS`, default a day; 0: no bound): its
    /// `exp` no further than this from its `iat`, nor from now.
    pub max_lifetime: Option<Duration>,
}

/// Who may change a team's settings (its E2B key): callers whose token's `claim` (a string, or an
/// array of strings) holds `role`. Without `JWT_ADMIN_ROLE` nobody is an admin: fail closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRole {
    pub claim: String,
    pub role: Option<String>,
}

impl Default for AdminRole {
    fn default() -> Self {
        AdminRole {
            claim: "roles".into(),
            role: None,
        }
    }
}

/// The most unpinned snapshots a project's retention may keep (`retention.keepLast`). Retention
/// keeps them per project; the team's snapshot quota bounds them all (its default, 1,000, is ten
/// times this); a snapshot worth keeping longer is pinned (pins are limited per project).
pub const MAX_KEEP_LAST: u32 = 100;

/// Defaults for projects registered without their own policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectDefaults {
    pub idle_timeout: Duration,
    pub sandbox_timeout: Duration,
    pub keep_last: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnforcerConfig {
    pub concurrency: usize,
    pub tick_deadline: Duration,
    /// After this many consecutive failed pauses a session is flagged instead of retried.
    pub max_failures: u32,
    /// Transitional states older than this are repaired by the reconciler.
    pub stuck_after: Duration,
    pub orphan_policy: OrphanPolicy,
    /// At most this many pages (of 100) of one E2B account's sandboxes per reconcile
    /// (`RECONCILE_MAX_LIST_PAGES`): an account with more is reconciled in part, never at the
    /// expense of the others.
    pub list_pages: usize,
}

pub use sandman_protocol::policy::{OrphanPolicy, SessionCapConfig};

/// E2B's cap on one continuous run, per deployment (`SESSION_CAP_SECS`; unset or 0: no handoffs)
/// and per team (`SANDMAN_TEAM_SESSION_CAPS=team-a:86400,team-b:0`), and how long before it an
/// active sandbox is handed off (`SESSION_CAP_MARGIN_SECS`, default 300).
fn parse_session_caps<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<SessionCapConfig, ConfigError> {
    let cap = |secs: u64| (secs > 0).then(|| Duration::from_secs(secs));
    let margin = env.seconds("SESSION_CAP_MARGIN_SECS", 300)?;
    let mut teams = std::collections::HashMap::new();
    for entry in env.get("SANDMAN_TEAM_SESSION_CAPS").unwrap_or_default().split(',') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let parsed = entry
            .split_once(':')
            .and_then(|(team, secs)| Some((team.trim(), secs.trim().parse::<u64>().ok()?)))
            .filter(|(team, _)| !team.is_empty());
        let Some((team, secs)) = parsed else {
            return Err(invalid(
                "SANDMAN_TEAM_SESSION_CAPS",
                format!("{entry:?} is not team:seconds"),
            ));
        };
        teams.insert(team.to_owned(), cap(secs));
    }
    let config = SessionCapConfig {
        default: cap(env.number("SESSION_CAP_SECS", 0)?),
        teams,
        margin,
    };
    let shortest = config.teams.values().chain([&config.default]).flatten().min();
    if let Some(shortest) = shortest
        && *shortest <= margin
    {
        return Err(invalid(
            "SESSION_CAP_MARGIN_SECS",
            format!(
                "must be shorter than every session cap (the shortest is {}s)",
                shortest.as_secs()
            ),
        ));
    }
    Ok(config)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunerConfig {
    pub dry_run: bool,
    pub tick_deadline: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table: String,
    pub e2b_api_url: String,
    /// `E2B_API_URL` may be http to a loopback address (the local emulator): `E2B_API_ALLOW_HTTP_LOOPBACK=true`.
    pub e2b_allow_http_loopback: bool,
    pub secrets: SecretsSource,
    pub auth: AuthConfig,
    pub defaults: ProjectDefaults,
    /// An upper bound on every project's heartbeat interval (`HEARTBEAT_INTERVAL_MAX_SECS`, default
    /// 300 s, which changes nothing): for deployments, and test stacks, that want a finer idle clock.
    pub heartbeat_interval_max: Duration,
    /// Bounds one E2B call, every retry included (`E2B_CALL_DEADLINE_SECS`); an invocation's own
    /// deadline cuts it shorter.
    pub e2b_call_deadline: Duration,
    pub enforcer: EnforcerConfig,
    pub session_cap: SessionCapConfig,
    pub pruner: PrunerConfig,
    /// Which templates each team's projects may start from.
    pub templates: TemplatePolicy,
    pub quotas: crate::quotas::Quotas,
    /// E2B's prices for usage estimates and budgets (`E2B_PRICE_VCPU_SECOND_USD`,
    /// `E2B_PRICE_GIB_SECOND_USD`; defaults: E2B's published prices, `usage::PRICES_AS_OF`).
    pub rates: crate::usage::Rates,
    /// Teams' own E2B keys, registered through the API.
    pub team_keys: TeamKeysConfig,
    pub outbound: OutboundConfig,
    /// Each team's API request rate, per API instance.
    pub request_rates: RequestRates,
}

/// A token bucket: `per_second` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRate {
    pub per_second: u32,
    pub burst: u32,
}

/// How many API requests a second each team may make, in each API instance (the API's
/// `rate.rs`): `SANDMAN_TEAM_REQUESTS_PER_SECOND` (default 50; 0: no limit) with bursts of
/// `SANDMAN_TEAM_REQUEST_BURST` (default 100), and per team
/// `SANDMAN_TEAM_REQUEST_RATES=team-a:200/400,team-b:0` (0: no limit for that team).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestRates {
    pub default: Option<RequestRate>,
    pub teams: std::collections::HashMap<String, Option<RequestRate>>,
}

impl RequestRates {
    /// `None`: the team's requests are not limited.
    pub fn for_team(&self, team: &str) -> Option<RequestRate> {
        self.teams.get(team).copied().unwrap_or(self.default)
    }

    fn parse<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<Self, ConfigError> {
        const RATES: &str = "SANDMAN_TEAM_REQUEST_RATES";
        let rate = |per_second: u32, burst: u32| {
            (per_second > 0).then(|| RequestRate {
                per_second,
                burst: burst.max(1),
            })
        };
        let default = rate(
            env.number("SANDMAN_TEAM_REQUESTS_PER_SECOND", 50)?,
            env.number("SANDMAN_TEAM_REQUEST_BURST", 100)?,
        );
        let mut teams = std::collections::HashMap::new();
        for entry in env.get(RATES).unwrap_or_default().split(',').map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            let parsed = entry.split_once(':').and_then(|(team, limit)| {
                let (per_second, burst) = match limit.split_once('/') {
                    Some((per_second, burst)) => (per_second.trim().parse().ok()?, burst.trim().parse().ok()?),
                    None => (limit.trim().parse().ok()?, 0),
                };
                Some((team.trim(), per_second, burst))
            });
            match parsed {
                Some((team, per_second, burst)) if !team.is_empty() && (per_second == 0 || burst > 0) => {
                    teams.insert(team.to_owned(), rate(per_second, burst));
                }
                _ => {
                    return Err(invalid(
                        RATES,
                        format!("{entry:?} is not team:perSecond/burst or team:0"),
                    ));
                }
            }
        }
        Ok(RequestRates { default, teams })
    }
}

/// How registered team keys are sealed (`SANDMAN_TEAM_KEYS_WRAP`), and how long a decrypted key
/// stays in an instance's memory (`SANDMAN_TEAM_KEY_CACHE_SECS`, default 300, at most 3600).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamKeysConfig {
    pub wrap: KeyWrapConfig,
    pub cache_ttl: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyWrapConfig {
    /// Unset: teams cannot register keys; only the deployment's keys are used.
    Off,
    /// `kms`: the stack's KMS key, `SANDMAN_KMS_KEY_ID`.
    Kms { key_id: String },
    /// `local`: `SANDMAN_DEV_MASTER_KEY` (64 hex digits). Refused when secrets come from Secrets
    /// Manager, i.e. in every deployed stack.
    Local(crate::secrets::Secret),
}

/// Outbound webhooks to the teams' apps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundConfig {
    /// Endpoints may be plain http to this machine (`OUTBOUND_ALLOW_HTTP_LOOPBACK=true`): the
    /// local stack's receiver. Never in a deployment.
    pub allow_http_loopback: bool,
    /// The first retry's delay (`OUTBOUND_RETRY_BASE_MS`, default 30 s); each next one is 4x longer.
    pub retry_base: Duration,
    /// Endpoints per team (`OUTBOUND_MAX_ENDPOINTS_PER_TEAM`, default 10).
    pub max_endpoints_per_team: u32,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env(&get);
        let config = Self::read(&env)?;
        check_auth(&config.auth, &env)?;
        if config.defaults.keep_last > MAX_KEEP_LAST {
            return Err(invalid(
                "DEFAULT_KEEP_SNAPSHOTS",
                format!("at most {MAX_KEEP_LAST} (a project's retention.keepLast)"),
            ));
        }
        Ok(config)
    }

    fn read<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<Config, ConfigError> {
        Ok(Config {
            table: env.required("SANDMAN_TABLE")?,
            e2b_api_url: env.get("E2B_API_URL").unwrap_or_else(|| "https://api.e2b.app".into()),
            e2b_allow_http_loopback: env.flag("E2B_API_ALLOW_HTTP_LOOPBACK")?,
            secrets: secrets_source(env),
            auth: AuthConfig {
                issuer: env.get("JWT_ISSUER"),
                audience: env.get("JWT_AUDIENCE"),
                team_claim: env.get("JWT_TEAM_CLAIM").unwrap_or_else(|| "team_id".into()),
                jwks_url: env.get("JWT_JWKS_URL"),
                hs256: env.flag("JWT_HS256")?,
                jwks_max_age: env.seconds("JWT_JWKS_MAX_AGE_SECS", 3600)?,
                max_lifetime: Some(env.seconds("JWT_MAX_LIFETIME_SECS", 86_400)?).filter(|d| !d.is_zero()),
                admin: AdminRole {
                    claim: env.get("JWT_ROLE_CLAIM").unwrap_or_else(|| "roles".into()),
                    role: env.get("JWT_ADMIN_ROLE"),
                },
            },
            heartbeat_interval_max: env.seconds("HEARTBEAT_INTERVAL_MAX_SECS", 300)?,
            defaults: ProjectDefaults {
                idle_timeout: env.seconds("DEFAULT_IDLE_TIMEOUT_SECS", 600)?,
                sandbox_timeout: env.seconds("DEFAULT_SANDBOX_TIMEOUT_SECS", 1800)?,
                keep_last: env.number("DEFAULT_KEEP_SNAPSHOTS", 10)?,
            },
            e2b_call_deadline: env.seconds("E2B_CALL_DEADLINE_SECS", 20)?,
            enforcer: EnforcerConfig {
                concurrency: env.number("ENFORCER_CONCURRENCY", 32)?,
                tick_deadline: env.seconds("TICK_DEADLINE_SECS", 90)?,
                max_failures: env.number("ENFORCER_MAX_FAILURES", 5)?,
                stuck_after: env.seconds("RECONCILE_STUCK_AFTER_SECS", 300)?,
                list_pages: env.number::<usize>("RECONCILE_MAX_LIST_PAGES", 50)?.max(1),
                orphan_policy: match env.get("ORPHAN_POLICY").as_deref() {
                    Some("pause") => OrphanPolicy::Pause,
                    None | Some("kill") => OrphanPolicy::Kill,
                    Some("report") => OrphanPolicy::Report,
                    Some(other) => {
                        return Err(invalid(
                            "ORPHAN_POLICY",
                            format!("{other:?} is not pause, kill or report"),
                        ));
                    }
                },
            },
            session_cap: parse_session_caps(env)?,
            pruner: PrunerConfig {
                dry_run: matches!(env.get("PRUNER_DRY_RUN").as_deref(), Some("1" | "true")),
                tick_deadline: env.seconds("TICK_DEADLINE_SECS", 90)?,
            },
            templates: TemplatePolicy::parse(
                &env.get("SANDMAN_TEMPLATES").unwrap_or_else(|| DEFAULT_TEMPLATES.into()),
                env.get("SANDMAN_TEAM_TEMPLATES").as_deref(),
            )
            .map_err(|reason| invalid("SANDMAN_TEMPLATES", reason))?,
            quotas: crate::quotas::Quotas {
                projects_per_team: env.number("SANDMAN_MAX_PROJECTS_PER_TEAM", 100)?,
                live_sandboxes_per_team: env.number("SANDMAN_MAX_LIVE_SANDBOXES_PER_TEAM", 20)?,
                snapshots_per_team: env.number("SANDMAN_MAX_SNAPSHOTS_PER_TEAM", 1000)?,
                pinned_snapshots_per_project: env.number("SANDMAN_MAX_PINNED_SNAPSHOTS_PER_PROJECT", 5)?,
            },
            team_keys: team_keys(env)?,
            rates: rates(env)?,
            outbound: OutboundConfig {
                allow_http_loopback: env.flag("OUTBOUND_ALLOW_HTTP_LOOPBACK")?,
                retry_base: Duration::from_millis(env.number("OUTBOUND_RETRY_BASE_MS", 30_000)?),
                max_endpoints_per_team: env.number(
                    "OUTBOUND_MAX_ENDPOINTS_PER_TEAM",
                    crate::outbound::MAX_ENDPOINTS_PER_TEAM,
                )?,
            },
            request_rates: RequestRates::parse(env)?,
        })
    }
}

fn team_keys<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<TeamKeysConfig, ConfigError> {
    const WRAP: &str = "SANDMAN_TEAM_KEYS_WRAP";
    let wrap = match env.get(WRAP).as_deref().map(str::trim) {
        None | Some("" | "off") => KeyWrapConfig::Off,
        Some("kms") => KeyWrapConfig::Kms {
            key_id: env.required("SANDMAN_KMS_KEY_ID")?,
        },
        Some("local") => {
            if matches!(secrets_source(env), SecretsSource::SecretsManager(_)) {
                return Err(invalid(
                    WRAP,
                    "local is the local stack's development wrapper; a deployed stack wraps team keys with kms",
                ));
            }
            let key = env
                .get("SANDMAN_DEV_MASTER_KEY")
                .ok_or(ConfigError::Missing("SANDMAN_DEV_MASTER_KEY"))?;
            KeyWrapConfig::Local(
                crate::team_keys::parse_master_key(&key)
                    .ok_or_else(|| invalid("SANDMAN_DEV_MASTER_KEY", "must be 64 hex digits (a 256-bit key)"))?,
            )
        }
        Some(other) => return Err(invalid(WRAP, format!("{other:?} is not kms, local or off"))),
    };
    let cache_ttl = env.seconds("SANDMAN_TEAM_KEY_CACHE_SECS", 300)?;
    if cache_ttl > Duration::from_secs(3600) {
        return Err(invalid("SANDMAN_TEAM_KEY_CACHE_SECS", "at most 3600"));
    }
    Ok(TeamKeysConfig { wrap, cache_ttl })
}

fn rates<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<crate::usage::Rates, ConfigError> {
    use crate::usage::{DEFAULT_GIB_SECOND_USD, DEFAULT_VCPU_SECOND_USD, Rates};
    let vcpu = env.number("E2B_PRICE_VCPU_SECOND_USD", DEFAULT_VCPU_SECOND_USD)?;
    let gib = env.number("E2B_PRICE_GIB_SECOND_USD", DEFAULT_GIB_SECOND_USD)?;
    for (name, price) in [("E2B_PRICE_VCPU_SECOND_USD", vcpu), ("E2B_PRICE_GIB_SECOND_USD", gib)] {
        if !price.is_finite() || price < 0.0 {
            return Err(invalid(name, "must be a price in US dollars, zero or more"));
        }
    }
    let configured = env.get("E2B_PRICE_VCPU_SECOND_USD").is_some() || env.get("E2B_PRICE_GIB_SECOND_USD").is_some();
    Ok(Rates {
        vcpu_second_usd: vcpu,
        gib_second_usd: gib,
        as_of: if configured {
            "configured"
        } else {
            Rates::default().as_of
        },
    })
}

fn secrets_source<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> SecretsSource {
    let arns = SecretArns {
        e2b: env.get(SecretKind::E2b.arn_variable()),
        webhook: env.get(SecretKind::Webhook.arn_variable()),
        jwt: env.get(SecretKind::Jwt.arn_variable()),
    };
    if arns == SecretArns::default() {
        SecretsSource::Environment
    } else {
        SecretsSource::SecretsManager(arns)
    }
}

/// Token checking fails closed: HS256 and a JWKS each need an issuer and an audience (a token
/// minted for another service with the same key must not pass), a JWKS an https URL; HS256
/// beside a JWKS must be asked for.
fn check_auth<F: Fn(&str) -> Option<String>>(auth: &AuthConfig, env: &Env<'_, F>) -> Result<(), ConfigError> {
    const HS256_NEEDS: &str = "with JWT_HS256=true (the stack's JwtIssuer and JwtAudience parameters): \
        HS256 tokens must name this deployment's issuer and audience, so that a token another service \
        signed with the same secret is refused";
    if auth.hs256 {
        if auth.issuer.is_none() {
            return Err(ConfigError::MissingFor {
                name: "JWT_ISSUER",
                because: HS256_NEEDS,
            });
        }
        if auth.audience.is_none() {
            return Err(ConfigError::MissingFor {
                name: "JWT_AUDIENCE",
                because: HS256_NEEDS,
            });
        }
    }
    let Some(url) = &auth.jwks_url else {
        return Ok(());
    };
    if auth.issuer.is_none() {
        return Err(invalid("JWT_ISSUER", "required with JWT_JWKS_URL"));
    }
    if auth.audience.is_none() {
        return Err(invalid("JWT_AUDIENCE", "required with JWT_JWKS_URL"));
    }
    if auth.hs256 && !env.flag("JWT_HS256_WITH_JWKS")? {
        return Err(invalid(
            "JWT_HS256",
            "HS256 beside JWT_JWKS_URL needs JWT_HS256_WITH_JWKS=true",
        ));
    }
    let loopback_allowed = env.flag("JWT_JWKS_ALLOW_HTTP_LOOPBACK")?;
    match reqwest::Url::parse(url) {
        Ok(parsed) if parsed.scheme() == "https" && parsed.host().is_some() => Ok(()),
        Ok(parsed) if parsed.scheme() == "http" && loopback_allowed && is_loopback(&parsed) => Ok(()),
        _ => Err(invalid(
            "JWT_JWKS_URL",
            "must be an https URL (http only to 127.0.0.1 with JWT_JWKS_ALLOW_HTTP_LOOPBACK=true)",
        )),
    }
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }

    fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.get(name).as_deref().map(str::trim) {
            None | Some("false" | "0" | "off") => Ok(false),
            Some("true" | "1" | "on") => Ok(true),
            Some(other) => Err(invalid(name, format!("{other:?} is not true or false"))),
        }
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing(name))
    }

    fn number<T: std::str::FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse()
                .map_err(|_| invalid(name, format!("{text:?} is not a number"))),
        }
    }

    fn seconds(&self, name: &'static str, default: u64) -> Result<Duration, ConfigError> {
        self.number(name, default).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn names_the_missing_variable() {
        assert_eq!(
            Config::from_lookup(lookup(&[])),
            Err(ConfigError::Missing("SANDMAN_TABLE"))
        );
    }

    #[test]
    fn defaults_apply_and_values_parse() {
        let config = Config::from_lookup(lookup(&[
            ("SANDMAN_TABLE", "t"),
            ("DEFAULT_IDLE_TIMEOUT_SECS", "45"),
            ("SANDMAN_WEBHOOK_SECRET_ARN", "arn:x"),
        ]))
        .unwrap();
        assert_eq!(config.defaults.idle_timeout, Duration::from_secs(45));
        assert_eq!(config.defaults.sandbox_timeout, Duration::from_secs(1800));
        assert_eq!(
            config.secrets,
            SecretsSource::SecretsManager(SecretArns {
                webhook: Some("arn:x".into()),
                ..SecretArns::default()
            })
        );
        assert_eq!(config.auth.team_claim, "team_id");
    }

    #[test]
    fn session_caps_per_deployment_and_team() {
        let config = Config::from_lookup(lookup(&[
            ("SANDMAN_TABLE", "t"),
            ("SESSION_CAP_SECS", "3600"),
            ("SANDMAN_TEAM_SESSION_CAPS", "pro:86400, free:0"),
        ]))
        .unwrap();
        let cap = &config.session_cap;
        assert_eq!(cap.handoff_after("any"), Some(Duration::from_secs(3300)));
        assert_eq!(cap.handoff_after("pro"), Some(Duration::from_secs(86_100)));
        assert_eq!(cap.handoff_after("free"), None);
        let off = Config::from_lookup(lookup(&[("SANDMAN_TABLE", "t")])).unwrap();
        assert_eq!(off.session_cap.handoff_after("any"), None, "off unless configured");
        for bad in [
            [("SESSION_CAP_SECS", "300"), ("SESSION_CAP_MARGIN_SECS", "300")],
            [("SANDMAN_TEAM_SESSION_CAPS", "pro"), ("SESSION_CAP_MARGIN_SECS", "1")],
        ] {
            let mut pairs = vec![("SANDMAN_TABLE", "t")];
            pairs.extend(bad);
            assert!(Config::from_lookup(lookup(&pairs)).is_err(), "{bad:?} must fail closed");
        }
    }

    #[test]
    fn token_checking_fails_closed() {
        let base = [("SANDMAN_TABLE", "t"), ("JWT_JWKS_URL", "https://id.example/jwks.json")];
        let named = |pairs: &[(&str, &str)]| match Config::from_lookup(lookup(pairs)) {
            Err(ConfigError::Invalid { name, .. }) => name,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(named(&base), "JWT_ISSUER");
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = extra.to_vec();
            pairs.extend([
                base[0],
                base[1],
                ("JWT_ISSUER", "https://id.example"),
                ("JWT_AUDIENCE", "api"),
            ]);
            pairs
        };
        assert!(Config::from_lookup(lookup(&with(&[]))).is_ok());
        assert_eq!(named(&with(&[("JWT_HS256", "true")])), "JWT_HS256");
        assert!(Config::from_lookup(lookup(&with(&[("JWT_HS256", "true"), ("JWT_HS256_WITH_JWKS", "true")]))).is_ok());
        assert_eq!(
            named(&with(&[("JWT_JWKS_URL", "http://id.example/jwks.json")])),
            "JWT_JWKS_URL"
        );
        assert_eq!(
            named(&with(&[("JWT_JWKS_URL", "http://127.0.0.1:9/jwks.json")])),
            "JWT_JWKS_URL"
        );
        let loopback = with(&[
            ("JWT_JWKS_URL", "http://127.0.0.1:9/jwks.json"),
            ("JWT_JWKS_ALLOW_HTTP_LOOPBACK", "true"),
        ]);
        assert!(Config::from_lookup(lookup(&loopback)).is_ok());
        let remote = with(&[
            ("JWT_JWKS_URL", "http://id.example/jwks.json"),
            ("JWT_JWKS_ALLOW_HTTP_LOOPBACK", "true"),
        ]);
        assert_eq!(named(&remote), "JWT_JWKS_URL");
        assert_eq!(named(&[("SANDMAN_TABLE", "t"), ("JWT_HS256", "yes")]), "JWT_HS256");
    }

    /// Security review L4: HS256 tokens are checked against an issuer and an audience, always; a
    /// deployment without them does not start, and says which to set.
    #[test]
    fn hs256_needs_an_issuer_and_an_audience() {
        let refused = |pairs: &[(&str, &str)]| match Config::from_lookup(lookup(pairs)) {
            Err(err) => err.to_string(),
            Ok(_) => panic!("{pairs:?} must be refused"),
        };
        let hs256 = [("SANDMAN_TABLE", "t"), ("JWT_HS256", "true")];
        let err = refused(&hs256);
        assert!(err.contains("JWT_ISSUER"), "{err}");
        let err = refused(&[hs256[0], hs256[1], ("JWT_ISSUER", "https://id.example")]);
        assert!(err.contains("JWT_AUDIENCE"), "{err}");
        let err = refused(&[hs256[0], hs256[1], ("JWT_AUDIENCE", "api")]);
        assert!(err.contains("JWT_ISSUER"), "{err}");
        assert!(
            Config::from_lookup(lookup(&[
                hs256[0],
                hs256[1],
                ("JWT_ISSUER", "https://id.example"),
                ("JWT_AUDIENCE", "api")
            ]))
            .is_ok()
        );
        // Without HS256 (and without a JWKS) nothing is checked here: the API refuses to start
        // for want of any way to check tokens, and the other functions check none.
        assert!(Config::from_lookup(lookup(&[("SANDMAN_TABLE", "t")])).is_ok());
    }

    #[test]
    fn request_rates_per_deployment_and_team() {
        let config = Config::from_lookup(lookup(&[
            ("SANDMAN_TABLE", "t"),
            ("SANDMAN_TEAM_REQUEST_RATES", "big:500/1000, free:0"),
        ]))
        .unwrap();
        let rates = &config.request_rates;
        let rate = |per_second, burst| Some(RequestRate { per_second, burst });
        assert_eq!(rates.for_team("any"), rate(50, 100));
        assert_eq!(rates.for_team("big"), rate(500, 1000));
        assert_eq!(rates.for_team("free"), None);
        let off = Config::from_lookup(lookup(&[
            ("SANDMAN_TABLE", "t"),
            ("SANDMAN_TEAM_REQUESTS_PER_SECOND", "0"),
        ]));
        assert_eq!(off.unwrap().request_rates.for_team("any"), None);
        for bad in ["big", "big:x/1", "big:5/0", ":5/10", "big:5/-1"] {
            let refused = Config::from_lookup(lookup(&[("SANDMAN_TABLE", "t"), ("SANDMAN_TEAM_REQUEST_RATES", bad)]));
            assert!(refused.is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn names_the_malformed_variable() {
        let err = Config::from_lookup(lookup(&[("SANDMAN_TABLE", "t"), ("ENFORCER_CONCURRENCY", "lots")])).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    name: "ENFORCER_CONCURRENCY",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_deployed_stack_refuses_the_local_key_wrapper() {
        let master = "ab".repeat(32);
        let lookup = |deployed: bool, wrap: &'static str| {
            let master = master.clone();
            Config::from_lookup(move |name| match name {
                "SANDMAN_TABLE" => Some("t".into()),
                "SANDMAN_E2B_SECRET_ARN" if deployed => Some("arn:aws:secretsmanager:x".into()),
                "SANDMAN_TEAM_KEYS_WRAP" => Some(wrap.into()),
                "SANDMAN_DEV_MASTER_KEY" => Some(master.clone()),
                "SANDMAN_KMS_KEY_ID" => Some("arn:aws:kms:k".into()),
                _ => None,
            })
        };
        assert!(matches!(
            lookup(false, "local").unwrap().team_keys.wrap,
            KeyWrapConfig::Local(_)
        ));
        let refused = lookup(true, "local").unwrap_err();
        assert!(refused.to_string().contains("SANDMAN_TEAM_KEYS_WRAP"), "{refused}");
        assert!(!refused.to_string().contains(&master), "{refused}");
        assert!(matches!(
            lookup(true, "kms").unwrap().team_keys.wrap,
            KeyWrapConfig::Kms { .. }
        ));
        assert!(lookup(false, "sometimes").is_err());
    }
}
