//! A new sandbox for a project: the newest snapshots first (or a chosen one and those older),
//! then the template. The ladder steps down only after a definite refusal; after an ambiguous
//! failure it first looks up what the failed create made.

use super::claim::{Claim, Claimed, claim};
use super::lease::sandbox_of_session;
use super::opened::{OpenPath, Opened, Step, opened};
use crate::domain::{
    Actor, Project, ProjectKey, SandboxRef, SessionEvent, Snapshot, SnapshotId, SnapshotStatus, metadata,
};
use crate::e2b::{E2bError, LaunchSettings, NewSandbox, SandboxNetwork};
use crate::error::Error;
use crate::port::{Account, Port};
use crate::record::{FailureCount, Field, ProjectRecord, SessionChanges, SessionWrite};

/// How many snapshots the ladder tries before the template.
const RESTORE_ATTEMPTS: usize = 3;

/// What the ladder made: a sandbox, the snapshot it came from (`None`: the template), and why a
/// rung was passed over.
pub(crate) struct Started {
    pub sandbox: SandboxRef,
    pub restored_from: Option<SnapshotId>,
    pub fallback_reason: Option<String>,
    /// The settings version it was created with.
    pub settings_version: u64,
}

impl Started {
    pub(crate) fn path(&self) -> OpenPath {
        match self.restored_from {
            Some(_) => OpenPath::Restored,
            None => OpenPath::Created,
        }
    }

    /// The write that records it: RUNNING with the new sandbox, the session no longer replacing one.
    pub(crate) fn changes(&self, now: time::OffsetDateTime, project: &Project) -> SessionChanges {
        SessionChanges {
            sandbox: Some(self.sandbox.clone()),
            last_active_at: Some(now),
            timeout_at: Some(now + project.sandbox_timeout),
            restored_from: Field::set_or_clear(self.restored_from.clone()),
            replaces_session: Field::Clear,
            failures: FailureCount::Reset,
            last_error: Field::Clear,
            settings_version: Some(self.settings_version),
            ..SessionChanges::default()
        }
    }

    pub(crate) fn cause(&self) -> &'static str {
        match self.restored_from {
            Some(_) => "restored from snapshot",
            None => "created from template",
        }
    }
}

/// The rungs a new sandbox is tried from.
#[derive(Debug, Clone)]
pub(crate) enum Ladder {
    /// An open: the project's newest snapshots, then its template.
    Newest,
    /// A restore of a chosen snapshot: it runs from that snapshot or fails, nothing stands in.
    Exactly(Snapshot),
    /// A fork's first open: the source's snapshot, then the template.
    First(Snapshot),
}

/// Starts a project that has no sandbox (never had one, or it was killed or lost): from
/// `preferred` (a fork's source snapshot) or the project's newest snapshots, else the template.
pub(crate) async fn start_fresh<P: Port>(
    port: &P,
    record: ProjectRecord,
    actor: Actor,
    preferred: Option<Snapshot>,
    cause: &str,
) -> Result<Step, Error> {
    let key = record.project.key();
    // A project stored before its template was refused must not reach E2B with it.
    port.check_template(&key.team, &record.project.template_id)?;
    let account = port.account(&key.team).await?;
    let launch = port.launch_settings(&account, &key).await?;
    let session_id = port.new_id();
    let write = SessionWrite::new(&record, actor, cause, port.now())
        .event(SessionEvent::Start)
        .changes(SessionChanges {
            session_id: Some(session_id.clone()),
            restored_from: Field::Clear,
            ..SessionChanges::default()
        });
    let Claim::Won(mut claimed) = claim(port, &write).await? else {
        return Ok(Step::Lost);
    };
    let ladder = preferred.map_or(Ladder::Newest, Ladder::First);
    match create_ladder(port, &account, &record, &session_id, &launch, ladder).await? {
        Ok(started) => Ok(Step::Done(Box::new(
            record_started(port, &mut claimed, &record, started).await?,
        ))),
        Err(err) => {
            let cause = format!("create failed: {}", err.kind());
            claimed
                .failed(cause, err.public_message(), SessionChanges::default())
                .await?;
            Err(err.into())
        }
    }
}

pub(crate) async fn record_started<P: Port>(
    port: &P,
    claimed: &mut Claimed<'_, P>,
    record: &ProjectRecord,
    started: Started,
) -> Result<Opened, Error> {
    let changes = started.changes(port.now(), &record.project);
    claimed.running(started.cause(), changes).await?;
    let key = claimed.key().clone();
    opened(
        port,
        started.path(),
        &key,
        started.restored_from,
        started.fallback_reason,
    )
    .await
}

/// Creates the session's sandbox down `ladder`'s rungs, each with `launch`'s env vars and rules
/// (a restore is a create from a snapshot: it takes them too). `Ok(Err)`: every rung refused (the
/// last one's error); `Err`: an outcome could not be looked up, and the claim is left to its lease.
pub(crate) async fn create_ladder<P: Port>(
    port: &P,
    account: &Account,
    record: &ProjectRecord,
    session_id: &str,
    launch: &LaunchSettings,
    ladder: Ladder,
) -> Result<Result<Started, E2bError>, Error> {
    let key = record.project.key();
    let project = &record.project;
    let sandbox_for = |template_id: &str| NewSandbox {
        template_id: template_id.to_string(),
        timeout: project.sandbox_timeout,
        auto_pause: true,
        metadata: metadata::for_session(&key, session_id),
        env_vars: launch.env_vars.clone(),
        secure: true,
        network: SandboxNetwork {
            allow_public_traffic: project.public_traffic,
            rules: launch.rules.clone(),
        },
    };
    let mut fallback_reason = None;
    let mut refused = None;
    let template_too = !matches!(ladder, Ladder::Exactly(_));
    for snapshot in restore_candidates(port, &key, ladder).await? {
        let new = sandbox_for(&snapshot.e2b_snapshot_id);
        match try_create(port, account, &key, session_id, &new).await? {
            Ok(sandbox) => {
                return Ok(Ok(Started {
                    sandbox,
                    restored_from: Some(snapshot.snapshot_id),
                    fallback_reason,
                    settings_version: launch.version,
                }));
            }
            Err(err) => {
                tracing::warn!(project = %key, snapshot = %snapshot.snapshot_id, error = %err, "restore failed; trying the next rung");
                fallback_reason = Some(format!(
                    "restoring snapshot {} failed: {}",
                    snapshot.snapshot_id,
                    err.public_message()
                ));
                refused = Some(err);
            }
        }
    }
    if !template_too {
        return Ok(Err(refused.unwrap_or(E2bError::NotFound)));
    }
    let from_template = try_create(port, account, &key, session_id, &sandbox_for(&project.template_id)).await?;
    Ok(from_template.map(|sandbox| Started {
        sandbox,
        restored_from: None,
        fallback_reason,
        settings_version: launch.version,
    }))
}

/// One rung. After an ambiguous failure the sandbox the create may have made is looked up by
/// the session's metadata; only a definite refusal (or nothing found) is `Ok(Err)`.
async fn try_create<P: Port>(
    port: &P,
    account: &Account,
    key: &ProjectKey,
    session_id: &str,
    new: &NewSandbox,
) -> Result<Result<SandboxRef, E2bError>, Error> {
    match port.create_sandbox(account, new).await {
        Ok(sandbox) => Ok(Ok(sandbox.into())),
        // It may have made one that E2B does not list yet: the claim is left to its lease, whose
        // settler looks again. Stepping down now could leave two sandboxes for one session.
        Err(err) if err.may_have_taken_effect() => match sandbox_of_session(port, account, key, session_id).await? {
            Some((sandbox, _)) => Ok(Ok(sandbox)),
            None => Err(err.into()),
        },
        Err(err) => Ok(Err(err)),
    }
}

async fn restore_candidates<P: Port>(port: &P, key: &ProjectKey, ladder: Ladder) -> Result<Vec<Snapshot>, Error> {
    Ok(match ladder {
        Ladder::Newest => {
            let newest = port.list_snapshots(key, 20).await?;
            newest
                .into_iter()
                .filter(|s| s.status == SnapshotStatus::Ready)
                .take(RESTORE_ATTEMPTS)
                .collect()
        }
        Ladder::Exactly(chosen) | Ladder::First(chosen) => vec![chosen],
    })
}
