//! The reconciler's rules, free of I/O: what to write when the table and E2B disagree.

use crate::domain::{SessionEvent, SessionState};
use crate::e2b::SandboxState;
use crate::record::ProjectRecord;

/// The events that take a session from `state` to what E2B reports (`None`: E2B no longer has the
/// sandbox). Empty when they agree. Every step is legal in the state machine.
pub fn steps(state: SessionState, e2b: Option<SandboxState>) -> Vec<SessionEvent> {
    use SessionEvent as E;
    use SessionState as S;
    match (state, e2b) {
        (S::Killed, _) => vec![],
        (_, None) => vec![E::Killed],
        (S::Running, Some(SandboxState::Running)) | (S::Paused, Some(SandboxState::Paused)) => {
            vec![]
        }
        // A stop that never finished is rolled back, never completed: a kill the reconciler
        // guessed could lose a snapshot the user required first.
        (S::Stopping, Some(SandboxState::Running)) => vec![E::Failed],
        (S::Stopping, Some(SandboxState::Paused)) => vec![E::Failed, E::Paused],
        (_, Some(SandboxState::Running)) => vec![E::Running],
        (_, Some(SandboxState::Paused)) => vec![E::Paused],
    }
}

/// What the table says about a Sandman sandbox E2B reports, when it is not a RUNNING session's
/// current sandbox (those are checked from the table's side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Consistent,
    /// The project is mid-action; the stuck-session check owns it.
    InTransit,
    /// E2B runs the project's current sandbox while the table says PAUSED.
    TableSaysPaused,
    /// No session wants this sandbox: it costs money for nothing.
    Orphan(&'static str),
}

pub fn classify(record: Option<&ProjectRecord>, sandbox_id: &str, e2b: SandboxState) -> Finding {
    let Some(record) = record else {
        return Finding::Orphan("its project does not exist");
    };
    let Some(session) = &record.session else {
        return Finding::Orphan("its project never had a session");
    };
    if session.state.is_transitional() {
        return Finding::InTransit;
    }
    let current = session.sandbox.as_ref().is_some_and(|s| s.sandbox_id == sandbox_id);
    match (current, session.state, e2b) {
        (false, _, _) => Finding::Orphan("it is not the project's current sandbox"),
        (true, SessionState::Killed, _) => Finding::Orphan("the table says it was killed"),
        (true, SessionState::Paused, SandboxState::Running) => Finding::TableSaysPaused,
        (true, _, _) => Finding::Consistent,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::datetime;

    use super::*;
    use crate::domain::{
        Actor, IdlePolicy, Project, ProjectId, RetentionPolicy, SandboxRef, Session, TeamId, Usage, transition,
    };

    #[test]
    fn every_repair_step_is_legal_and_lands_where_e2b_is() {
        for state in SessionState::ALL {
            for e2b in [None, Some(SandboxState::Running), Some(SandboxState::Paused)] {
                let mut at = state;
                for event in steps(state, e2b) {
                    at =
                        transition(Some(at), event).unwrap_or_else(|refusal| panic!("{state:?} vs {e2b:?}: {refusal}"));
                }
                let expected = match (state, e2b) {
                    (SessionState::Killed, _) | (_, None) => SessionState::Killed,
                    (_, Some(SandboxState::Running)) => SessionState::Running,
                    (_, Some(SandboxState::Paused)) => SessionState::Paused,
                };
                assert_eq!(at, expected, "{state:?} vs {e2b:?}");
            }
        }
    }

    fn record(state: SessionState, sandbox_id: &str) -> ProjectRecord {
        let t = datetime!(2026-11-01 12:00 UTC);
        ProjectRecord {
            project: Project {
                inactivity: Default::default(),
                fork_of: None,
                team_id: TeamId::parse("t").unwrap(),
                project_id: ProjectId::parse("p").unwrap(),
                template_id: "base".into(),
                idle: IdlePolicy::default(),
                retention: RetentionPolicy::default(),
                sandbox_timeout: Duration::from_secs(900),
                snapshot_before_kill: false,
                public_traffic: false,
                idle_gaps: Default::default(),
                created_at: t,
                updated_at: t,
            },
            session: Some(Session {
                session_id: "s1".into(),
                sandbox: Some(SandboxRef {
                    sandbox_id: sandbox_id.into(),
                    domain: None,
                    access_token: None,
                }),
                state,
                state_since: t,
                lease_until: None,
                last_active_at: t,
                idle_at: None,
                running_since: None,
                busy_since: None,
                busy_until: None,
                timeout_at: None,
                paused_at: None,
                last_actor: Actor::User,
                last_cause: String::new(),
                last_error: None,
                failures: 0,
                restored_from: None,
                replaces_session: None,
                retiring: None,
                last_event_at: None,
                usage: Usage::default(),
                settings_version: None,
            }),
            version: 3,
            settings_version: 0,
            prune_marks: 0,
        }
    }

    #[test]
    fn orphans_are_sandboxes_no_session_wants() {
        use SandboxState::{Paused, Running};
        assert_eq!(
            classify(None, "a", Running),
            Finding::Orphan("its project does not exist")
        );
        assert!(matches!(
            classify(Some(&record(SessionState::Running, "b")), "a", Running),
            Finding::Orphan(_)
        ));
        assert!(matches!(
            classify(Some(&record(SessionState::Killed, "a")), "a", Paused),
            Finding::Orphan(_)
        ));
        assert_eq!(
            classify(Some(&record(SessionState::Paused, "a")), "a", Running),
            Finding::TableSaysPaused
        );
        assert_eq!(
            classify(Some(&record(SessionState::Paused, "a")), "a", Paused),
            Finding::Consistent
        );
        assert_eq!(
            classify(Some(&record(SessionState::Starting, "old")), "new", Running),
            Finding::InTransit
        );
    }
}
