//! Snapshots: persistent templates captured from a running sandbox.

use serde::Serialize;
use time::OffsetDateTime;

use crate::ids;

/// The tag E2B gives a snapshot's only build.
pub const DEFAULT_TAG: &str = "default";

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotView {
    /// What the API returns as `snapshotID` (`<template id>:default` or `<team>/<name>:default`).
    pub snapshot_id: String,
    /// The raw template id behind the snapshot.
    pub template_id: String,
    pub names: Vec<String>,
    pub name: Option<String>,
    pub team_id: String,
    pub source_sandbox_id: String,
    pub build_id: String,
    pub cpu_count: u32,
    pub memory_mb: u32,
    pub disk_size_mb: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The source sandbox's files when the snapshot was taken.
    pub files: std::collections::BTreeMap<String, String>,
    /// When it was deleted (only in [`crate::Emulator::snapshot_history`]).
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
}

/// A reference to a snapshot as clients write it: a raw id, `<id>:tag`, `name`,
/// `<namespace>/<name>` or `<namespace>/<name>:tag`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SnapshotRef<'a> {
    pub namespace: Option<&'a str>,
    pub base: &'a str,
}

impl<'a> SnapshotRef<'a> {
    pub(crate) fn parse(reference: &'a str) -> SnapshotRef<'a> {
        let untagged = match reference.rsplit_once(':') {
            Some((base, tag)) if !tag.contains('/') => base,
            _ => reference,
        };
        match untagged.split_once('/') {
            Some((namespace, base)) => SnapshotRef {
                namespace: Some(namespace),
                base,
            },
            None => SnapshotRef {
                namespace: None,
                base: untagged,
            },
        }
    }

    /// Whether a create with this `templateID` must name an existing snapshot: our raw
    /// snapshot ids, or anything in the caller's own namespace. Other names are templates.
    pub(crate) fn must_exist(&self, own_namespace: &str) -> bool {
        match self.namespace {
            Some(namespace) => namespace == own_namespace,
            None => ids::is_template_id_shaped(self.base),
        }
    }
}

/// Team ids become namespaces the way E2B team slugs look: lowercase, `-` for the rest.
pub(crate) fn team_namespace(team_id: &str) -> String {
    team_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        assert_eq!(
            SnapshotRef::parse("abc:default"),
            SnapshotRef {
                namespace: None,
                base: "abc"
            }
        );
        assert_eq!(
            SnapshotRef::parse("team-a/my-snap:default"),
            SnapshotRef {
                namespace: Some("team-a"),
                base: "my-snap"
            }
        );
        assert_eq!(
            SnapshotRef::parse("base"),
            SnapshotRef {
                namespace: None,
                base: "base"
            }
        );
    }

    #[test]
    fn only_snapshot_shaped_references_must_exist() {
        assert!(!SnapshotRef::parse("base").must_exist("team-a"));
        assert!(!SnapshotRef::parse("e2b/base").must_exist("team-a"));
        assert!(SnapshotRef::parse("team-a/x:default").must_exist("team-a"));
        assert!(SnapshotRef::parse("abcdefghij0123456789:default").must_exist("team-a"));
    }
}
