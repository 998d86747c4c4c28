//! What a project's (or a team's) env vars and secrets may hold: names, sizes, counts, hosts and
//! headers. Each refusal is `Error::Invalid` naming the request field at fault (a 400).

use std::collections::BTreeMap;

use crate::error::Error;
use crate::secrets::Secret;
use crate::store::{ScopeSettings, StoredSecret};

/// At most this many env vars per project, and per team.
pub const MAX_VARS: usize = 100;
/// An env var's value, in bytes.
pub const MAX_VAR_BYTES: usize = 16 * 1024;
/// All of a scope's env var names and values together, in bytes.
pub const MAX_VARS_TOTAL_BYTES: usize = 48 * 1024;
/// At most this many secrets per project, and per team.
pub const MAX_SECRETS: usize = 50;
/// One secret's value, in bytes: it and its request fit in the API's 64 KiB body limit.
pub const MAX_SECRET_BYTES: usize = 32 * 1024;
/// All of a scope's secret values together, in bytes.
pub const MAX_SECRETS_TOTAL_BYTES: usize = 256 * 1024;
/// The hosts one secret is sent to.
pub const MAX_HOSTS: usize = 10;
const MAX_NAME: usize = 64;
const MAX_VAR_NAME: usize = 128;
const MAX_HEADER: usize = 64;
const MAX_PREFIX: usize = 64;
/// E2B sets variables of its own in every sandbox (`E2B_SANDBOX`, `E2B_SANDBOX_ID`, ...).
const RESERVED_PREFIX: &str = "E2B_";
/// Headers a proxy must own: replacing them would break or redirect the request.
const RESERVED_HEADERS: [&str; 6] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
];

/// `SECRET_NAME_PATTERN` as the OpenAPI document declares it.
pub const SECRET_NAME_PATTERN: &str = "^[A-Z_][A-Z0-9_]{0,63}$";

fn invalid(field: &'static str, message: impl Into<String>) -> Error {
    Error::Invalid {
        field,
        message: message.into(),
    }
}

/// What a caller asks a secret to be: its value and where E2B's proxy puts it.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretSpec {
    pub value: Secret,
    /// The hosts whose HTTPS requests get the header (exact names, `api.openai.com`).
    pub hosts: Vec<String>,
    /// The header it goes into (default `Authorization`).
    pub header: String,
    /// Text before the value in the header (`Bearer `); empty by default.
    pub prefix: String,
}

/// A secret's name: an env var's shape in capitals (it is the env var's name where the secret goes
/// as one), so E2B's lower-cased names never collide.
pub fn check_secret_name(name: &str) -> Result<(), Error> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_uppercase() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !(first_ok && rest_ok && name.len() <= MAX_NAME) {
        return Err(invalid(
            "name",
            format!(
                "a secret's name is 1 to {MAX_NAME} of A-Z, 0-9 and '_', not starting with a digit ({SECRET_NAME_PATTERN})"
            ),
        ));
    }
    if name.starts_with(RESERVED_PREFIX) {
        return Err(invalid("name", "names starting with E2B_ are E2B's own"));
    }
    Ok(())
}

/// A secret's value, hosts, header and prefix, checked and normalised (hosts lower-cased, sorted).
pub fn check_secret(mut spec: SecretSpec) -> Result<SecretSpec, Error> {
    let value = spec.value.expose();
    if value.is_empty() {
        return Err(invalid("value", "a secret's value must not be empty"));
    }
    if value.len() > MAX_SECRET_BYTES {
        return Err(invalid(
            "value",
            format!("a secret's value is at most {MAX_SECRET_BYTES} bytes (32 KiB)"),
        ));
    }
    // It goes into an HTTP header: a line break would start another header.
    if value.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
        return Err(invalid(
            "value",
            "a secret's value goes into a header: no line breaks or NUL characters",
        ));
    }
    if spec.hosts.is_empty() || spec.hosts.len() > MAX_HOSTS {
        return Err(invalid(
            "hosts",
            format!("a secret names 1 to {MAX_HOSTS} hosts its header is sent to"),
        ));
    }
    for host in &mut spec.hosts {
        *host = host.trim().to_ascii_lowercase();
        check_host(host)?;
    }
    spec.hosts.sort();
    spec.hosts.dedup();
    let header = spec.header.trim();
    let token = header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if header.is_empty() || header.len() > MAX_HEADER || !token {
        return Err(invalid(
            "header",
            format!("a header name is 1 to {MAX_HEADER} of letters, digits and '-'"),
        ));
    }
    if RESERVED_HEADERS.contains(&header.to_ascii_lowercase().as_str()) {
        return Err(invalid("header", format!("the {header} header cannot carry a secret")));
    }
    spec.header = header.to_owned();
    let printable = spec.prefix.bytes().all(|b| (b' '..=b'~').contains(&b));
    if spec.prefix.len() > MAX_PREFIX || !printable || spec.prefix.contains("${") {
        return Err(invalid(
            "prefix",
            format!("a prefix is at most {MAX_PREFIX} printable ASCII characters, without '${{'"),
        ));
    }
    Ok(spec)
}

/// An exact DNS name (no wildcard, no port, no IP literal): where E2B's proxy adds the header.
fn check_host(host: &str) -> Result<(), Error> {
    let labels_ok = host.split('.').all(|label| {
        (1..=63).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    let ip_like = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if host.len() > 253 || !host.contains('.') || !labels_ok || ip_like {
        return Err(invalid(
            "hosts",
            format!(
                "{host:?} is not a host name (exact names such as api.openai.com; no scheme, port, path or wildcard)"
            ),
        ));
    }
    Ok(())
}

/// Whether a scope may hold `name` as a secret next to what it holds: the count and total size,
/// and no env var of the same name in the scope.
pub fn check_secret_room(settings: &ScopeSettings, name: &str, size: usize) -> Result<(), Error> {
    let others = settings.secrets.iter().filter(|s| s.name != name);
    let (count, bytes) = others.fold((1, size), |(count, bytes), s| (count + 1, bytes + s.size as usize));
    if count > MAX_SECRETS {
        return Err(invalid(
            "name",
            format!("a project or team holds at most {MAX_SECRETS} secrets"),
        ));
    }
    if bytes > MAX_SECRETS_TOTAL_BYTES {
        return Err(invalid(
            "value",
            format!("a project's or team's secrets hold at most {MAX_SECRETS_TOTAL_BYTES} bytes (256 KiB) in all"),
        ));
    }
    if settings.vars.contains_key(name) {
        return Err(invalid(
            "name",
            format!("{name} is an env var here already; remove it first"),
        ));
    }
    Ok(())
}

/// A whole set of env vars, as `PUT .../env` replaces it.
pub fn check_vars(vars: &BTreeMap<String, String>, secrets: &[StoredSecret]) -> Result<(), Error> {
    if vars.len() > MAX_VARS {
        return Err(invalid("vars", format!("at most {MAX_VARS} env vars")));
    }
    let mut total = 0;
    for (name, value) in vars {
        let mut bytes = name.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
        let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !(first_ok && rest_ok && name.len() <= MAX_VAR_NAME) {
            return Err(invalid(
                "vars",
                format!(
                    "{name:?} is not an env var name (1 to {MAX_VAR_NAME} of letters, digits and '_', not starting with a digit)"
                ),
            ));
        }
        if name.to_ascii_uppercase().starts_with(RESERVED_PREFIX) {
            return Err(invalid(
                "vars",
                format!("{name}: names starting with E2B_ are E2B's own"),
            ));
        }
        if value.len() > MAX_VAR_BYTES || value.contains('\0') {
            return Err(invalid(
                "vars",
                format!("{name}: a value is at most {MAX_VAR_BYTES} bytes, without NUL characters"),
            ));
        }
        if secrets.iter().any(|secret| &secret.name == name) {
            return Err(invalid(
                "vars",
                format!("{name} is a secret here; a name is one or the other"),
            ));
        }
        total += name.len() + value.len();
    }
    if total > MAX_VARS_TOTAL_BYTES {
        return Err(invalid(
            "vars",
            format!("env vars hold at most {MAX_VARS_TOTAL_BYTES} bytes of names and values in all"),
        ));
    }
    Ok(())
}

/// The last four characters: enough to tell values apart, never enough to use one. A value of
/// eight characters or fewer shows none of them.
pub fn last_four(value: &str) -> Option<String> {
    let chars: Vec<char> = value.chars().collect();
    (chars.len() > 8).then(|| chars[chars.len() - 4..].iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: &str, hosts: &[&str], header: &str, prefix: &str) -> SecretSpec {
        SecretSpec {
            value: Secret::new(value),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            header: header.into(),
            prefix: prefix.into(),
        }
    }

    fn field(result: Result<impl std::fmt::Debug, Error>) -> &'static str {
        match result {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn secret_names_are_capitals_digits_and_underscores() {
        for good in ["OPENAI_API_KEY", "_X", "A1", &"A".repeat(64)] {
            assert!(check_secret_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "openai",
            "1ABC",
            "A-B",
            "A B",
            "É",
            &"A".repeat(65),
            "E2B_TOKEN",
            "A#B",
        ] {
            assert_eq!(field(check_secret_name(bad)), "name", "{bad:?}");
        }
    }

    #[test]
    fn a_secret_is_checked_and_normalised() {
        let ok = check_secret(spec(
            "sk-1",
            &["API.OpenAI.com ", "api.openai.com"],
            " Authorization ",
            "Bearer ",
        ))
        .unwrap();
        assert_eq!(ok.hosts, ["api.openai.com"]);
        assert_eq!(ok.header, "Authorization");
        assert_eq!(field(check_secret(spec("", &["a.com"], "X", ""))), "value");
        assert_eq!(
            field(check_secret(spec(
                &"x".repeat(MAX_SECRET_BYTES + 1),
                &["a.com"],
                "X",
                ""
            ))),
            "value"
        );
        assert!(check_secret(spec(&"x".repeat(MAX_SECRET_BYTES), &["a.com"], "X", "")).is_ok());
        assert_eq!(
            field(check_secret(spec("a\r\nX-Evil: 1", &["a.com"], "X", ""))),
            "value"
        );
        assert_eq!(field(check_secret(spec("v", &[], "X", ""))), "hosts");
        for host in [
            "localhost",
            "https://a.com",
            "a.com:443",
            "*.a.com",
            "a.com/x",
            "10.0.0.1",
            "-a.com",
        ] {
            assert_eq!(field(check_secret(spec("v", &[host], "X", ""))), "hosts", "{host}");
        }
        assert_eq!(field(check_secret(spec("v", &["a.com"], "Host", ""))), "header");
        assert_eq!(field(check_secret(spec("v", &["a.com"], "X Y", ""))), "header");
        assert_eq!(
            field(check_secret(spec("v", &["a.com"], "X", "${e2b.secrets.other}"))),
            "prefix"
        );
        assert_eq!(field(check_secret(spec("v", &["a.com"], "X", "tab\t"))), "prefix");
    }

    #[test]
    fn env_vars_have_names_sizes_and_no_secret_twins() {
        let vars = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert!(check_vars(&vars(&[("DATABASE_URL", "postgres://x"), ("debug", "1")]), &[]).is_ok());
        for bad in ["1X", "A-B", "", "e2b_x"] {
            assert_eq!(field(check_vars(&vars(&[(bad, "v")]), &[])), "vars", "{bad:?}");
        }
        let big = "x".repeat(MAX_VAR_BYTES + 1);
        assert_eq!(field(check_vars(&vars(&[("A", &big)]), &[])), "vars");
        let many: BTreeMap<String, String> = (0..=MAX_VARS).map(|i| (format!("V{i}"), String::new())).collect();
        assert_eq!(field(check_vars(&many, &[])), "vars");
    }

    #[test]
    fn only_the_last_four_of_a_long_value_are_kept() {
        assert_eq!(last_four("sk-abcdefgh1234").as_deref(), Some("1234"));
        assert_eq!(last_four("short123"), None);
    }
}
