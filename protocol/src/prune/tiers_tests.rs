use std::time::Duration;

use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use crate::domain::{
    IdlePolicy, InactivityPolicy, Project, ProjectId, RetentionPolicy, Session, SnapshotKind, TeamId, Usage,
};

const NOW: OffsetDateTime = datetime!(2026-11-20 12:00 UTC);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

fn record(state: Option<SessionState>, since: OffsetDateTime, inactivity: InactivityPolicy) -> ProjectRecord {
    let project = Project {
        team_id: TeamId::parse("team").unwrap(),
        project_id: ProjectId::parse("project").unwrap(),
        template_id: "base".into(),
        idle: IdlePolicy::default(),
        retention: RetentionPolicy::default(),
        sandbox_timeout: HOUR,
        snapshot_before_kill: false,
        public_traffic: false,
        inactivity,
        fork_of: None,
        idle_gaps: Default::default(),
        created_at: NOW - DAY * 100,
        updated_at: NOW - DAY * 100,
    };
    let session = state.map(|state| Session {
        session_id: "s".into(),
        sandbox: None,
        state,
        state_since: since,
        lease_until: None,
        last_active_at: since,
        idle_at: None,
        running_since: None,
        busy_since: None,
        busy_until: None,
        timeout_at: None,
        paused_at: (state == SessionState::Paused).then_some(since),
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
    });
    ProjectRecord {
        project,
        session,
        version: 1,
        settings_version: 0,
        prune_marks: 0,
    }
}

fn snap(n: u32, taken: OffsetDateTime, pinned: bool) -> Snapshot {
    Snapshot {
        snapshot_id: SnapshotId::parse(format!("S{n:04}")).unwrap(),
        team_id: TeamId::parse("team").unwrap(),
        project_id: ProjectId::parse("project").unwrap(),
        e2b_snapshot_id: format!("e2b-{n}"),
        source_sandbox_id: "sbx".into(),
        description: String::new(),
        kind: SnapshotKind::Manual,
        pinned,
        status: SnapshotStatus::Ready,
        created_at: taken,
        size_bytes: None,
        file_count: None,
        held_until: None,
    }
}

const ARCHIVE_A_DAY: InactivityPolicy = InactivityPolicy {
    archive_after: Some(DAY),
    delete_after: None,
    delete_pinned: false,
};

#[test]
fn a_sandbox_paused_past_archive_after_is_archived_with_a_snapshot_unless_one_holds_its_state() {
    let paused = Some(SessionState::Paused);
    let early = tier_plan(&record(paused, NOW - HOUR, ARCHIVE_A_DAY), &[], NOW);
    assert_eq!(early.step, TierStep::Nothing);
    assert_eq!(early.next_due, Some(NOW - HOUR + DAY), "due once the day is up");

    let long = record(paused, NOW - DAY * 2, ARCHIVE_A_DAY);
    let older = [snap(1, NOW - DAY * 3, false)];
    assert_eq!(
        tier_plan(&long, &older, NOW).step,
        TierStep::Archive { snapshot_first: true },
        "a snapshot from before the pause does not hold the paused state"
    );
    let since = [snap(1, NOW - DAY * 2 + HOUR, false)];
    assert_eq!(
        tier_plan(&long, &since, NOW).step,
        TierStep::Archive { snapshot_first: false }
    );

    let running = record(Some(SessionState::Running), NOW - DAY * 2, ARCHIVE_A_DAY);
    assert_eq!(
        tier_plan(&running, &[], NOW),
        TierPlan {
            step: TierStep::Nothing,
            next_due: None
        }
    );
}

#[test]
fn delete_after_takes_the_snapshots_of_an_inactive_project_and_pins_only_when_asked() {
    let policy = InactivityPolicy {
        archive_after: None,
        delete_after: Some(DAY * 30),
        delete_pinned: false,
    };
    let snapshots = [snap(1, NOW - DAY * 50, false), snap(2, NOW - DAY * 45, true)];
    let killed = record(Some(SessionState::Killed), NOW - DAY * 40, policy);
    assert_eq!(
        tier_plan(&killed, &snapshots, NOW).step,
        TierStep::Delete(vec![snapshots[0].snapshot_id.clone()])
    );
    let with_pins = record(
        Some(SessionState::Killed),
        NOW - DAY * 40,
        InactivityPolicy {
            delete_pinned: true,
            ..policy
        },
    );
    assert_eq!(
        tier_plan(&with_pins, &snapshots, NOW).step,
        TierStep::Delete(vec![snapshots[0].snapshot_id.clone(), snapshots[1].snapshot_id.clone()])
    );
    let recent = record(Some(SessionState::Killed), NOW - DAY * 10, policy);
    assert_eq!(
        tier_plan(&recent, &snapshots, NOW).next_due,
        Some(NOW - DAY * 10 + DAY * 30)
    );
    assert_eq!(
        tier_plan(&killed, &[], NOW).next_due,
        None,
        "nothing to delete: no timer"
    );
    let running = record(Some(SessionState::Running), NOW - DAY * 40, policy);
    assert_eq!(tier_plan(&running, &snapshots, NOW).step, TierStep::Nothing);
}
