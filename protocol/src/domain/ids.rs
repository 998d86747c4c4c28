use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be 1 to 128 characters of letters, digits, '-', '_' or '.', not starting with '.'")]
pub struct IdError {
    pub field: &'static str,
}

/// `validate` as a JSON Schema pattern: what the OpenAPI document declares for ids in paths.
pub const ID_PATTERN: &str = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$";

/// Identifiers end up inside DynamoDB keys (`PROJECT#team#project`), so the alphabet is closed:
/// no `#`, no whitespace, nothing that needs escaping in a URL path. A leading '.' is refused:
/// `.` and `..` are path segments clients rewrite before sending.
fn validate(field: &'static str, value: &str) -> Result<(), IdError> {
    let ok = (1..=128).contains(&value.len())
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok { Ok(()) } else { Err(IdError { field }) }
}

macro_rules! id_type {
    ($name:ident, $field:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                validate($field, &value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(TeamId, "teamId");
id_type!(ProjectId, "projectId");
id_type!(SnapshotId, "snapshotId");

/// A project is only ever addressed within its team.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProjectKey {
    pub team: TeamId,
    pub project: ProjectId,
}

impl ProjectKey {
    pub fn new(team: TeamId, project: ProjectId) -> Self {
        Self { team, project }
    }
}

impl fmt::Display for ProjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.team, self.project)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_closed_alphabet() {
        assert!(ProjectId::parse("my-app_2.0").is_ok());
        assert_eq!(ProjectId::parse("x".repeat(128)).map(|p| p.as_str().len()), Ok(128));
    }

    #[test]
    fn refuses_what_would_break_a_key_or_a_path() {
        for bad in ["", "a#b", "a b", "a/b", "é", ".", "..", ".hidden", &"x".repeat(129)] {
            assert_eq!(ProjectId::parse(bad), Err(IdError { field: "projectId" }), "{bad:?}");
        }
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<TeamId>("\"team#1\"").is_err());
        assert!(serde_json::from_str::<TeamId>("\"team-1\"").is_ok());
    }
}
