//! Applying a verified event: find its session, decide, write; on a lost race, decide again on
//! what the winner left.

use serde::Serialize;

use super::decide::{Decision, Ignored, Rules, decide};
use super::event::LifecycleEvent;
use crate::domain::{SessionState, metadata};
use crate::error::StoreError;
use crate::port::{Consistency, Port};
use crate::record::{Counted, ProjectRecord};

/// Conflicts tolerated before giving up and letting E2B redeliver.
const MAX_ATTEMPTS: usize = 4;

/// What an acknowledged delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Receipt {
    /// Written: `transitioned` says whether the state moved (otherwise usage, timeout or the
    /// event time alone were recorded).
    Applied {
        state: Option<SessionState>,
        transitioned: bool,
    },
    /// This event was applied before.
    Duplicate,
    Ignored {
        reason: Ignored,
    },
    /// No project Sandman knows has this sandbox.
    UnknownSandbox,
}

/// Why an event was not applied: E2B should deliver it again.
#[derive(Debug, thiserror::Error)]
pub enum WebhookFailure {
    #[error("the session kept changing while the event was applied")]
    Contended,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies one verified event to the session it concerns (`record`, found by [`session_of`];
/// `None`: no project holds the sandbox). `dedupe_id` makes its effect happen once. The compute
/// it reports is counted first, once per E2B execution, even when the event concerns a sandbox
/// the project replaced or a project since deleted: the team's usage is the team's bill.
pub async fn apply<P: Port>(
    port: &P,
    record: Option<ProjectRecord>,
    event: &LifecycleEvent,
    dedupe_id: &str,
) -> Result<Receipt, WebhookFailure> {
    count_usage(port, record.as_ref(), event, dedupe_id).await?;
    let Some(mut record) = record else {
        return Ok(Receipt::UnknownSandbox);
    };
    let rules = Rules {
        stuck_after: port.rules().stuck_after,
    };
    for _ in 0..MAX_ATTEMPTS {
        let write = match decide(&record, event, dedupe_id, port.now(), &rules) {
            Decision::Ignore(reason) => return Ok(Receipt::Ignored { reason }),
            Decision::Write(write) => write,
        };
        match port.write(&write).await {
            Ok(written) => {
                return Ok(Receipt::Applied {
                    state: written.state,
                    transitioned: write.event.is_some(),
                });
            }
            Err(StoreError::Duplicate) => return Ok(Receipt::Duplicate),
            // `decide` asked the same state machine first; a refusal here changes nothing either.
            Err(StoreError::Refused(refusal)) => {
                tracing::warn!(%refusal, "the state machine refused a webhook write");
                return Ok(Receipt::Ignored {
                    reason: Ignored::NoChange,
                });
            }
            Err(StoreError::Conflict { current }) => {
                tracing::debug!(sandbox = %event.sandbox_id, "session changed while applying the event; deciding again");
                record = match current {
                    Some(current) => *current,
                    None => match port.read(&write.key, Consistency::Strong).await? {
                        Some(current) => current,
                        None => return Ok(Receipt::UnknownSandbox),
                    },
                };
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(WebhookFailure::Contended)
}

/// Counts the compute `event` reports, once per E2B execution (`sandbox_execution_id`; an event
/// without one is its own): a `paused` and then a `killed` of one run report the same execution.
/// Counted against the project that held the sandbox, else the one its metadata names (deleted,
/// perhaps: the team's counters still take it).
async fn count_usage<P: Port>(
    port: &P,
    record: Option<&ProjectRecord>,
    event: &LifecycleEvent,
    dedupe_id: &str,
) -> Result<bool, StoreError> {
    let Some(used) = event.usage() else {
        return Ok(false);
    };
    let key = match record {
        Some(record) => record.project.key(),
        None => match metadata::owner(&event.metadata) {
            Some((key, _)) => key,
            None => return Ok(false),
        },
    };
    let execution = execution_of(event, dedupe_id);
    let saved = record
        .and_then(|r| r.session.as_ref())
        .filter(|s| s.sandbox.as_ref().is_some_and(|b| b.sandbox_id == event.sandbox_id))
        .and_then(|s| super::decide::saved(s, event));
    let counted = Counted {
        execution,
        used,
        saved,
        at: event.timestamp,
        on_project: record.is_some(),
    };
    let first = port.count_usage(&key, &counted).await?;
    if first {
        port.after_usage(&key, event.timestamp).await;
    }
    Ok(first)
}

/// The execution an event reports on: E2B's `sandbox_execution_id` (a `paused` and then a `killed`
/// of one run name the same), else the event itself.
fn execution_of(event: &LifecycleEvent, dedupe_id: &str) -> String {
    match &event.execution_id {
        Some(execution) => format!("{}:{execution}", event.sandbox_id),
        None => format!("event:{dedupe_id}"),
    }
}

/// Counts the compute an event read from E2B's events API reports, unless a delivery counted it
/// (E2B gives up on a webhook after three attempts: its usage would be lost). Only Sandman's
/// sandboxes (their metadata names the project); the session is not changed (the reconciler
/// corrects state from E2B's listing). `true`: counted now.
pub async fn backfill_usage<P: Port>(port: &P, event: &LifecycleEvent) -> Result<bool, StoreError> {
    let (Some(_), Some((owner, _)), Some(id)) = (event.usage(), metadata::owner(&event.metadata), &event.id) else {
        return Ok(false);
    };
    if port.execution_counted(&owner.team, &execution_of(event, id)).await? {
        return Ok(false);
    }
    let record = session_of(port, event).await?;
    count_usage(port, record.as_ref(), event, id).await
}

/// The project whose session the event may concern: by Sandman's metadata on the sandbox, else
/// by the sandbox id. When the project the metadata names does not hold the sandbox, its id
/// decides (`bySandbox`, same team only): a live fork's sandbox carries its source's metadata,
/// and its events are the fork's, never the source's.
pub async fn session_of<P: Port>(port: &P, event: &LifecycleEvent) -> Result<Option<ProjectRecord>, StoreError> {
    let sandbox_id = &event.sandbox_id;
    match metadata::owner(&event.metadata) {
        Some((key, _)) => {
            let named = port.read(&key, Consistency::Strong).await?;
            crate::ops::holder_of(port, &key, named, sandbox_id).await
        }
        None => port.find_by_sandbox(sandbox_id).await,
    }
}
