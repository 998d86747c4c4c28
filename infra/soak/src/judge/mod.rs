//! The judge: every invariant, judged only by ground truth (E2B's state, history and call log as
//! the emulator keeps them, the answers the API gave, what the receivers got), never by Sandman's
//! table or lifecycle log, which are what is judged. Each invariant counts the cases it judged; one
//! that judged none fails the run. `run` judges the transcript after the run; `quiet` drives the
//! quiescence (faults off, one reconcile, one enforcer tick) and judges what it leaves.

pub mod answers;
pub mod heartbeats;
pub mod listings;
pub mod outbound;
pub mod quiet;
pub mod quota;
pub mod state;
pub mod truth;
pub mod usage;

use crate::actors::Soak;

// During the run, judged from the transcript against E2B's record.
pub const API_5XX: &str = "api-5xx";
pub const SERVICE_UNAVAILABLE: &str = "503-outside-faults";
pub const OPENS_PROGRESS: &str = "opens-progress";
pub const RUNNING_ANSWER: &str = "running-answer";
pub const PAUSED_ANSWER: &str = "paused-answer";
pub const RESTORE_SOURCE: &str = "restore-source";
pub const OWN_SANDBOX: &str = "own-sandbox";
pub const LIVE_QUOTA: &str = "live-quota";
pub const RECONCILE_LISTS: &str = "reconcile-lists";
pub const HEARTBEAT_WINDOW: &str = "heartbeat-window";
pub const OUTBOUND_SIGNED: &str = "outbound-signed";
pub const WEBHOOK_5XX: &str = "webhook-5xx-outside-faults";
pub const SWITCH_REFUSED: &str = "switch-refused";
pub const NO_PANIC: &str = "no-panic";
pub const DYNAMODB_RESTARTED: &str = "dynamodb-restarted";
// After faults stop.
pub const QUIET_TICKS: &str = "quiet-ticks";
pub const CONVERGED: &str = "converged";
pub const BUDGET_ENFORCED: &str = "budget-enforced";
pub const IDLE_PAUSED: &str = "idle-paused";
pub const NO_ORPHANS: &str = "no-orphans";
pub const SNAPSHOTS_AGREE: &str = "snapshots-agree";
pub const USAGE_NOT_TWICE: &str = "usage-not-twice";
pub const USAGE_NOT_LOST: &str = "usage-not-lost";
pub const RETENTION: &str = "retention";

/// Every invariant and what it asks, in the report's order.
pub const INVARIANTS: &[(&str, &str)] = &[
    (API_5XX, "no answer is a 5xx other than 503"),
    (
        SERVICE_UNAVAILABLE,
        "a 503 only while a fault is on, or within 3 s after one",
    ),
    (
        OPENS_PROGRESS,
        "outside faults, >= 99% of opens answer 200/202 or a documented 4xx",
    ),
    (
        RUNNING_ANSWER,
        "an answer saying RUNNING names a sandbox E2B ran at some instant between request and answer",
    ),
    (
        PAUSED_ANSWER,
        "a pause answered paused names a sandbox E2B did not run at some instant between request and answer",
    ),
    (
        RESTORE_SOURCE,
        "a restore of S answered 200 runs a sandbox E2B made from S (S's source sandbox's snapshot)",
    ),
    (
        OWN_SANDBOX,
        "a sandbox named to a team lives in an E2B account the team used, made for that project or forked",
    ),
    (
        LIVE_QUOTA,
        "no team ever had more running sandboxes in E2B than its live quota",
    ),
    (
        RECONCILE_LISTS,
        "a reconcile while one account's lists failed listed the others (E2B's call log)",
    ),
    (
        HEARTBEAT_WINDOW,
        "no enforcer pause (E2B's call log) inside the idle window of a heartbeat answered recorded",
    ),
    (
        OUTBOUND_SIGNED,
        "every outbound delivery verifies with its endpoint's secret and concerns a project of its team",
    ),
    (
        WEBHOOK_5XX,
        "the webhook function answers 5xx only while a fault is on, or within 3 s after one",
    ),
    (
        SWITCH_REFUSED,
        "a move to another E2B account is refused while E2B holds the team's sandboxes or snapshots",
    ),
    (NO_PANIC, "no panic anywhere"),
    (DYNAMODB_RESTARTED, "every DynamoDB Local restart asked for happened"),
    (
        QUIET_TICKS,
        "after faults stop, every reconcile, prune and enforcer tick succeeds, failing nothing",
    ),
    (
        CONVERGED,
        "one reconcile after faults stop, every project's state and sandbox (API) agree with E2B's",
    ),
    (
        BUDGET_ENFORCED,
        "a team past its budget runs nothing in E2B one enforcer tick later",
    ),
    (
        IDLE_PAUSED,
        "once idle past its timeout and a lease, a project's sandbox is paused by one enforcer tick",
    ),
    (
        NO_ORPHANS,
        "every E2B sandbox, running or paused, is the current sandbox of an existing project",
    ),
    (
        SNAPSHOTS_AGREE,
        "E2B's snapshots are exactly the READY rows, none of a deleted project, none DELETING",
    ),
    (
        USAGE_NOT_TWICE,
        "a team's usage counters hold no execution twice (E2B's events, by execution)",
    ),
    (
        USAGE_NOT_LOST,
        "a team's usage counters hold every execution E2B reported",
    ),
    (RETENTION, "no project keeps more unpinned snapshots than its keepLast"),
];

/// Judges the run's transcript and record (all but what the quiescence judges).
pub async fn run(soak: &Soak, truth: &truth::Truth) {
    answers::judge(soak, truth);
    quota::judge(soak, truth);
    listings::judge(soak, truth);
    heartbeats::judge(soak, truth);
    outbound::judge(soak);
    answers::switches(soak, truth);
}
