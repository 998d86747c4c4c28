//! The metadata Sandman puts on every sandbox it creates, so E2B's events and listings lead back
//! to the project and to the exact sandbox incarnation (session) they concern.

use std::collections::BTreeMap;

use crate::domain::{ProjectId, ProjectKey, TeamId};

pub const TEAM: &str = "sandmanTeam";
pub const PROJECT: &str = "sandmanProject";
pub const SESSION: &str = "sandmanSession";

pub fn for_session(key: &ProjectKey, session_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TEAM.to_string(), key.team.to_string()),
        (PROJECT.to_string(), key.project.to_string()),
        (SESSION.to_string(), session_id.to_string()),
    ])
}

/// What every sandbox Sandman made for `team` carries: a listing filter for the team's own account.
pub fn of_team(team: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(TEAM.to_string(), team.to_string())])
}

/// The project and session a sandbox belongs to, if Sandman created it.
pub fn owner(metadata: &BTreeMap<String, String>) -> Option<(ProjectKey, Option<String>)> {
    let team = TeamId::parse(metadata.get(TEAM)?.as_str()).ok()?;
    let project = ProjectId::parse(metadata.get(PROJECT)?.as_str()).ok()?;
    Some((ProjectKey::new(team, project), metadata.get(SESSION).cloned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_foreign_sandboxes() {
        let key = ProjectKey::new(TeamId::parse("t").unwrap(), ProjectId::parse("p").unwrap());
        assert_eq!(owner(&for_session(&key, "s1")), Some((key, Some("s1".into()))));
        assert_eq!(owner(&BTreeMap::from([("user".into(), "x".into())])), None);
    }
}
