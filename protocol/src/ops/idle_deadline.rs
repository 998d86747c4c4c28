//! The idle deadline activity sets, for a heartbeat and for an open alike, with the session-cap
//! handoff and `busyForSeconds` holds folded in, and how often a heartbeat is written.

use std::time::Duration;

use time::OffsetDateTime;

use crate::adaptive;
use crate::domain::{Project, Session};
use crate::port::Port;
use crate::record::{ActivityWrite, ProjectRecord};

/// The idle deadline this activity sets: the idle timeout from now, or a longer hold
/// (`busyForSeconds`, now or still standing), but never past the session-cap handoff, so the
/// idle index's one range query finds both. An adaptive project learns from the gap since the
/// last recorded activity in the same write; with a new timeout the deadline is set outright.
pub(crate) fn activity_write<P: Port>(
    port: &P,
    record: &ProjectRecord,
    session: &Session,
    now: OffsetDateTime,
    since: OffsetDateTime,
    busy_for: Option<Duration>,
) -> ActivityWrite {
    let project = &record.project;
    let lesson = adaptive::idle_lesson(project.idle.adaptive, &project.idle_gaps, session.last_active_at, now);
    let stored_deadline = now + project.idle.idle_timeout;
    let idle_deadline = now + lesson.map_or(project.idle.idle_timeout, |l| l.idle_timeout);
    let busy_until = busy_for.map(|hold| now + hold);
    let held = session
        .busy_until
        .max(busy_until)
        .filter(|until| *until > idle_deadline);
    let floor = held.unwrap_or(idle_deadline);
    let handoff = handoff_deadline(port, record.project.team_id.as_str(), session.running_since);
    let idle_at = handoff.map_or(floor, |at| at.min(floor));
    ActivityWrite {
        at: now,
        not_since: busy_for.is_none().then_some(since),
        idle_at: (lesson.is_some() || idle_at != stored_deadline).then_some(idle_at),
        busy_until,
        held_at_most: Some(floor),
        idle_lesson: lesson,
    }
}

/// The activity an open of a running sandbox records: unthrottled, the idle deadline from now (never
/// past the session-cap handoff, nor cutting short a `busyForSeconds` hold).
pub(crate) fn opened_activity<P: Port>(
    port: &P,
    record: &ProjectRecord,
    session: &Session,
    now: OffsetDateTime,
) -> ActivityWrite {
    ActivityWrite {
        not_since: None,
        ..activity_write(port, record, session, now, now, None)
    }
}

/// When a run that began at `running_since` is handed off before `team`'s session cap.
pub fn handoff_deadline<P: Port>(
    port: &P,
    team: &str,
    running_since: Option<OffsetDateTime>,
) -> Option<OffsetDateTime> {
    let after = port.rules().session_caps.handoff_after(team)?;
    Some(running_since? + after)
}

/// How often a heartbeat is written for `project`: its idle policy's interval, bounded by the deployment's.
pub fn heartbeat_interval<P: Port>(port: &P, project: &Project) -> Duration {
    project
        .idle
        .heartbeat_interval()
        .min(port.rules().heartbeat_interval_max)
}
