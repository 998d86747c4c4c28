//! The model's world: the table (as the store keeps it), E2B (its sandboxes, snapshots and the
//! events it has yet to deliver) and the clock. `perform` is what one effect does to it, given the
//! fault the model chose for it; the table's session writes go through `record::apply`, the very
//! rule the store's transaction is held to.

use std::collections::{BTreeMap, BTreeSet};

use sandman_protocol::domain::{Project, ProjectKey, ProjectSpec, SessionState, Snapshot, SnapshotStatus, metadata};
use sandman_protocol::e2b::{
    Connected, E2bError, LaunchSettings, ListedSandbox, Sandbox, SandboxDetail, SandboxState, SnapshotInfo,
};
use sandman_protocol::port::Account;
use sandman_protocol::record::{ApplyError, ProjectRecord, apply};
use sandman_protocol::{Error, StoreError};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::effect::{Effect, Outcome};

pub const T0: OffsetDateTime = datetime!(2026-12-01 12:00 UTC);

pub fn at(clock: u32) -> OffsetDateTime {
    T0 + time::Duration::seconds(i64::from(clock))
}

pub fn clock_of(time: OffsetDateTime) -> i64 {
    (time - T0).whole_seconds()
}

/// The one team of the model, and its E2B account.
pub const TEAM: &str = "t";
pub const ACCOUNT: &str = "acct";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SnapshotRow {
    pub snapshot: Snapshot,
    /// A restore's hold (`heldUntil`).
    pub held_until: Option<OffsetDateTime>,
    /// Forks' holds (`forkHolds`, `forkHeldUntil`).
    pub fork_holds: u32,
    pub fork_held_until: Option<OffsetDateTime>,
}

/// What the store's items hold beside the session: the index marks the protocol reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Marks {
    pub live_fork: Option<(String, OffsetDateTime)>,
    pub prune_at: Option<OffsetDateTime>,
    /// `pruneMarks`: how many times the project was marked due.
    pub prune_marks: u64,
}

impl Marks {
    fn mark_prune_due(&mut self, now: OffsetDateTime) {
        self.prune_at = Some(now);
        self.prune_marks += 1;
    }
}

impl SnapshotRow {
    /// The row as the store reads it.
    pub fn view(&self) -> Snapshot {
        let forks = self.fork_held_until.filter(|_| self.fork_holds > 0);
        Snapshot {
            held_until: self.held_until.max(forks),
            ..self.snapshot.clone()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Table {
    pub projects: BTreeMap<String, ProjectRecord>,
    pub marks: BTreeMap<String, Marks>,
    /// (project, snapshot id)
    pub snapshots: BTreeMap<(String, String), SnapshotRow>,
    pub dedupe: BTreeSet<String>,
    /// Executions whose compute the counters hold.
    pub counted: BTreeSet<String>,
    /// The team's live-sandbox units.
    pub live: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SbxState {
    Running,
    Paused,
    Killed,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sbx {
    pub state: SbxState,
    pub metadata: BTreeMap<String, String>,
    pub template: String,
    pub started_at: u32,
    /// The current (or last) execution: a run from a create or resume to a pause or kill.
    pub execution: u32,
    pub run_since: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Created,
    Paused,
    Resumed,
    Killed,
}

/// A lifecycle event E2B has yet to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event {
    pub id: String,
    pub kind: EventKind,
    pub sandbox_id: String,
    pub metadata: BTreeMap<String, String>,
    pub at: u32,
    /// `<sandbox>:<execution>` and its run seconds, on `paused` and `killed` of a run.
    pub execution: Option<(String, u32)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct E2bWorld {
    pub sandboxes: BTreeMap<String, Sbx>,
    /// E2B snapshot id -> the sandbox it was taken of, and its name.
    pub snapshots: BTreeMap<String, (String, String)>,
    pub next: u32,
    pub events: Vec<Event>,
}

/// How the model lets one E2B call go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// As E2B's state says (which may be a definite refusal: 404, 409).
    Answered,
    /// A 5xx or timeout before E2B did anything.
    Unavailable,
    /// E2B did it, and the answer was lost (a 5xx, a timeout).
    AnswerLost,
    /// A 429: refused, nothing done.
    RateLimited,
}

fn unavailable() -> E2bError {
    E2bError::Unavailable {
        attempts: 1,
        detail: "HTTP 502 (model)".into(),
    }
}

impl E2bWorld {
    fn new_id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    fn emit(&mut self, kind: EventKind, sandbox_id: &str, now: u32) {
        let sandbox = &self.sandboxes[sandbox_id];
        // `paused` and `killed` always carry the execution: a killed paused sandbox reports its
        // last run again, under the same execution id.
        let execution = matches!(kind, EventKind::Paused | EventKind::Killed).then(|| {
            (
                sandbox.execution.to_string(),
                now.max(sandbox.run_since) - sandbox.run_since + 1,
            )
        });
        let metadata = sandbox.metadata.clone();
        let id = self.new_id("ev");
        self.events.push(Event {
            id,
            kind,
            sandbox_id: sandbox_id.to_owned(),
            metadata,
            at: now,
            execution,
        });
    }

    pub fn live(&self) -> impl Iterator<Item = (&String, &Sbx)> {
        self.sandboxes.iter().filter(|(_, s)| s.state != SbxState::Killed)
    }

    fn sandbox(&self, id: &str) -> Option<&Sbx> {
        self.sandboxes.get(id).filter(|s| s.state != SbxState::Killed)
    }

    fn answer(id: &str, template: &str) -> Sandbox {
        Sandbox {
            sandbox_id: id.to_owned(),
            template_id: template.to_owned(),
            alias: None,
            domain: Some("e2b.model".into()),
            envd_version: "0".into(),
            envd_access_token: Some(sandman_protocol::domain::Secret::new(format!("token-{id}"))),
            traffic_access_token: None,
        }
    }

    fn detail(&self, id: &str) -> Option<SandboxDetail> {
        let s = self.sandbox(id)?;
        Some(SandboxDetail {
            sandbox_id: id.to_owned(),
            template_id: s.template.clone(),
            alias: None,
            state: match s.state {
                SbxState::Running => SandboxState::Running,
                _ => SandboxState::Paused,
            },
            started_at: at(s.started_at),
            end_at: at(s.started_at + 3600),
            metadata: s.metadata.clone(),
            lifecycle: None,
            domain: Some("e2b.model".into()),
            envd_version: "0".into(),
            envd_access_token: None,
            cpu_count: 2,
            memory_mb: 512,
            disk_size_mb: 1024,
        })
    }

    /// E2B pauses a running sandbox on its own (its timeout ran out, autoPause).
    pub fn auto_pause(&mut self, id: &str, now: u32) {
        if let Some(s) = self.sandboxes.get_mut(id).filter(|s| s.state == SbxState::Running) {
            s.state = SbxState::Paused;
            self.emit(EventKind::Paused, id, now);
        }
    }

    fn create(&mut self, template: String, metadata: BTreeMap<String, String>, now: u32) -> Result<Sandbox, E2bError> {
        if template != "base" && !self.snapshots.contains_key(&template) {
            return Err(E2bError::NotFound);
        }
        let id = self.new_id("sb");
        self.sandboxes.insert(
            id.clone(),
            Sbx {
                state: SbxState::Running,
                metadata,
                template: template.clone(),
                started_at: now,
                execution: 1,
                run_since: now,
            },
        );
        self.emit(EventKind::Created, &id, now);
        Ok(Self::answer(&id, &template))
    }

    /// The call as E2B performs it, with no fault.
    fn call(&mut self, effect: &Effect, now: u32) -> Outcome {
        match effect {
            Effect::Create(new) => Outcome::Sandbox(self.create(new.template_id.clone(), new.metadata.clone(), now)),
            Effect::Fork(source, _) => {
                Outcome::Sandbox(match self.sandbox(source).map(|s| (s.state, s.metadata.clone())) {
                    Some((SbxState::Running, metadata)) => self.create("base".into(), metadata, now),
                    Some(_) => Err(E2bError::Conflict {
                        message: "paused".into(),
                    }),
                    None => Err(E2bError::NotFound),
                })
            }
            Effect::Connect(id, _) => {
                Outcome::Connected(match self.sandbox(id).map(|s| (s.state, s.template.clone())) {
                    Some((SbxState::Running, template)) => Ok(Connected {
                        sandbox: Self::answer(id, &template),
                        resumed: false,
                    }),
                    Some((_, template)) => {
                        let s = self.sandboxes.get_mut(id).expect("present");
                        s.state = SbxState::Running;
                        s.execution += 1;
                        s.run_since = now;
                        self.emit(EventKind::Resumed, id, now);
                        Ok(Connected {
                            sandbox: Self::answer(id, &template),
                            resumed: true,
                        })
                    }
                    None => Err(E2bError::NotFound),
                })
            }
            Effect::Pause(id) => Outcome::Called(match self.sandbox(id).map(|s| s.state) {
                Some(SbxState::Running) => {
                    self.sandboxes.get_mut(id).expect("present").state = SbxState::Paused;
                    self.emit(EventKind::Paused, id, now);
                    Ok(())
                }
                Some(_) => Err(E2bError::Conflict {
                    message: "already paused".into(),
                }),
                None => Err(E2bError::NotFound),
            }),
            Effect::Kill(id) => Outcome::Called(match self.sandbox(id) {
                Some(_) => {
                    self.emit(EventKind::Killed, id, now);
                    self.sandboxes.get_mut(id).expect("present").state = SbxState::Killed;
                    Ok(())
                }
                None => Err(E2bError::NotFound),
            }),
            Effect::Get(id) => Outcome::Detail(self.detail(id).ok_or(E2bError::NotFound)),
            Effect::List(filter) => {
                let listed = self
                    .live()
                    .filter(|(_, s)| filter.metadata.iter().all(|(k, v)| s.metadata.get(k) == Some(v)))
                    .map(|(id, s)| listed(id, s))
                    .collect();
                Outcome::Listed(Ok(listed))
            }
            Effect::SetTimeout(id, _) => Outcome::Called(match self.sandbox(id).map(|s| s.state) {
                Some(SbxState::Running) => Ok(()),
                Some(_) => Err(E2bError::Conflict {
                    message: "paused".into(),
                }),
                None => Err(E2bError::NotFound),
            }),
            Effect::CreateSnapshot(id, name) => Outcome::SnapshotInfo(match self.sandbox(id).map(|s| s.state) {
                Some(SbxState::Running) => {
                    let snapshot = self.new_id("e2bsnap");
                    self.snapshots.insert(snapshot.clone(), (id.clone(), name.clone()));
                    Ok(SnapshotInfo {
                        snapshot_id: snapshot,
                        names: vec![name.clone()],
                    })
                }
                Some(_) => Err(E2bError::Conflict {
                    message: "paused".into(),
                }),
                None => Err(E2bError::NotFound),
            }),
            Effect::ListE2bSnapshots(id) => Outcome::SnapshotInfos(Ok(self
                .snapshots
                .iter()
                .filter(|(_, (from, _))| from == id)
                .map(|(snapshot, (_, name))| SnapshotInfo {
                    snapshot_id: snapshot.clone(),
                    names: vec![name.clone()],
                })
                .collect())),
            Effect::DeleteE2bSnapshot(id) => Outcome::Called(if !self.snapshots.contains_key(id) {
                Err(E2bError::NotFound)
            } else if self
                .live()
                .any(|(_, s)| s.template == *id && s.state == SbxState::Running)
            {
                Err(E2bError::BadRequest {
                    message: "a sandbox made from it runs".into(),
                })
            } else {
                self.snapshots.remove(id);
                Ok(())
            }),
            other => unreachable!("not an E2B call: {other:?}"),
        }
    }

    /// The call under `fault`.
    pub fn perform(&mut self, effect: &Effect, fault: Fault, now: u32) -> Outcome {
        let err = match fault {
            Fault::Answered => return self.call(effect, now),
            Fault::Unavailable => unavailable(),
            Fault::RateLimited => E2bError::RateLimited { retry_after: None },
            Fault::AnswerLost => {
                self.call(effect, now);
                unavailable()
            }
        };
        match effect {
            Effect::Create(_) | Effect::Fork(..) => Outcome::Sandbox(Err(err)),
            Effect::Connect(..) => Outcome::Connected(Err(err)),
            Effect::Get(_) => Outcome::Detail(Err(err)),
            Effect::List(_) => Outcome::Listed(Err(err)),
            Effect::CreateSnapshot(..) => Outcome::SnapshotInfo(Err(err)),
            Effect::ListE2bSnapshots(_) => Outcome::SnapshotInfos(Err(err)),
            _ => Outcome::Called(Err(err)),
        }
    }
}

pub fn listed(id: &str, s: &Sbx) -> ListedSandbox {
    ListedSandbox {
        sandbox_id: id.to_owned(),
        template_id: s.template.clone(),
        alias: None,
        state: match s.state {
            SbxState::Running => SandboxState::Running,
            _ => SandboxState::Paused,
        },
        started_at: at(s.started_at),
        end_at: at(s.started_at + 3600),
        metadata: s.metadata.clone(),
        envd_version: "0".into(),
        cpu_count: 2,
        memory_mb: 512,
        disk_size_mb: 1024,
    }
}

/// What a table effect did: its outcome, and the execution whose usage it counted.
pub struct TableResult {
    pub outcome: Outcome,
    pub counted_usage: Option<String>,
}

impl Table {
    pub fn record(&self, key: &ProjectKey) -> Option<&ProjectRecord> {
        self.projects.get(key.project.as_str())
    }

    fn snapshots_of(&self, project: &str) -> Vec<Snapshot> {
        let mut rows: Vec<Snapshot> = self
            .snapshots
            .iter()
            .filter(|((p, _), _)| p == project)
            .map(|(_, row)| row.view())
            .collect();
        rows.sort_by(|a, b| b.snapshot_id.as_str().cmp(a.snapshot_id.as_str()));
        rows
    }

    /// A store effect, as the store performs it (the model injects no store faults).
    pub fn perform(
        &mut self,
        effect: &Effect,
        now: OffsetDateTime,
        budget_reached: bool,
        live_limit: u32,
    ) -> TableResult {
        let done = |outcome| TableResult {
            outcome,
            counted_usage: None,
        };
        let key_of = |key: &ProjectKey| key.project.as_str().to_owned();
        match effect {
            Effect::Read(key) => {
                let marks = self.marks.get(&key_of(key)).map_or(0, |m| m.prune_marks);
                let record = self.record(key).cloned().map(|record| ProjectRecord {
                    prune_marks: marks,
                    ..record
                });
                done(Outcome::Record(Ok(record)))
            }
            Effect::Write(write) => {
                let project = key_of(&write.key);
                let Some(record) = self.projects.get(&project) else {
                    return done(Outcome::Written(Err(StoreError::Conflict { current: None })));
                };
                let (next, written) = match apply(record, write) {
                    Ok(applied) => applied,
                    Err(ApplyError::Refused(refusal)) => {
                        return done(Outcome::Written(Err(StoreError::Refused(refusal))));
                    }
                    Err(ApplyError::Conflict) => {
                        let current = Some(Box::new(record.clone()));
                        return done(Outcome::Written(Err(StoreError::Conflict { current })));
                    }
                };
                if let Some(hold) = &write.hold {
                    let row = self
                        .snapshots
                        .get(&(project.clone(), hold.snapshot_id.as_str().to_owned()));
                    if !row.is_some_and(|r| r.snapshot.status == SnapshotStatus::Ready) {
                        return done(Outcome::Written(Err(StoreError::NotFound)));
                    }
                }
                let delta = write.live_delta(written.state.filter(|_| write.event.is_some()));
                if let Some(limit) = write.live_limit.filter(|_| delta > 0)
                    && self.live + delta > i64::from(limit)
                {
                    return done(Outcome::Written(Err(StoreError::LiveQuota { limit })));
                }
                if let Some(dedupe) = &write.dedupe
                    && !self.dedupe.insert(dedupe.id.clone())
                {
                    return done(Outcome::Written(Err(StoreError::Duplicate)));
                }
                self.live += delta;
                if let Some(hold) = &write.hold
                    && let Some(row) = self
                        .snapshots
                        .get_mut(&(project.clone(), hold.snapshot_id.as_str().to_owned()))
                {
                    row.held_until = Some(hold.until);
                }
                if matches!(written.state, Some(SessionState::Paused | SessionState::Killed)) && write.event.is_some() {
                    self.marks.entry(project.clone()).or_default().mark_prune_due(now);
                }
                self.projects.insert(project, next);
                done(Outcome::Written(Ok(written)))
            }
            Effect::RecordActivity(key, sandbox_id, activity) => {
                let Some(record) = self.projects.get_mut(key.project.as_str()) else {
                    return done(Outcome::Flag(Ok(false)));
                };
                let timeout = record.project.idle.idle_timeout;
                let Some(session) = record.session.as_mut().filter(|s| {
                    s.state == SessionState::Running && s.sandbox.as_ref().is_some_and(|b| b.sandbox_id == *sandbox_id)
                }) else {
                    return done(Outcome::Flag(Ok(false)));
                };
                if activity.not_since.is_some_and(|since| session.last_active_at >= since)
                    || activity
                        .held_at_most
                        .is_some_and(|floor| session.busy_until.is_some_and(|held| held > floor))
                {
                    return done(Outcome::Flag(Ok(false)));
                }
                session.last_active_at = activity.at;
                session.idle_at = Some(activity.idle_at.unwrap_or(activity.at + timeout));
                session.busy_since = None;
                if let Some(until) = activity.busy_until {
                    session.busy_until = Some(until);
                }
                if let Some(lesson) = activity.idle_lesson {
                    record.project.idle_gaps = lesson.gaps;
                    record.project.idle.idle_timeout = lesson.idle_timeout;
                }
                done(Outcome::Flag(Ok(true)))
            }
            Effect::RecordTimeout(key, sandbox_id, until) => {
                let session = self
                    .projects
                    .get_mut(key.project.as_str())
                    .and_then(|r| r.session.as_mut())
                    .filter(|s| {
                        s.state == SessionState::Running
                            && s.sandbox.as_ref().is_some_and(|b| b.sandbox_id == *sandbox_id)
                    });
                let wrote = session.map(|s| s.timeout_at = Some(*until)).is_some();
                done(Outcome::Flag(Ok(wrote)))
            }
            Effect::DeferIdle(deferral) => {
                let record = self.projects.get_mut(deferral.key.project.as_str());
                let Some(record) = record.filter(|r| r.version == deferral.expected_version) else {
                    return done(Outcome::Flag(Ok(false)));
                };
                let Some(session) = record
                    .session
                    .as_mut()
                    .filter(|s| s.state == SessionState::Running && s.idle_at == Some(deferral.read_idle_at))
                else {
                    return done(Outcome::Flag(Ok(false)));
                };
                session.idle_at = Some(deferral.idle_at);
                session.busy_since = session.busy_since.or(Some(deferral.at));
                done(Outcome::Flag(Ok(true)))
            }
            Effect::ReleaseRetiring(key, sandbox_id) => {
                let session = self
                    .projects
                    .get_mut(key.project.as_str())
                    .and_then(|r| r.session.as_mut());
                let released = match session {
                    Some(session) if session.retiring.as_deref() == Some(sandbox_id.as_str()) => {
                        session.retiring = None;
                        true
                    }
                    _ => false,
                };
                if released {
                    self.live -= 1;
                }
                done(Outcome::Flag(Ok(released)))
            }
            Effect::FindBySandbox(sandbox_id) => done(Outcome::Record(Ok(self
                .projects
                .values()
                .find(|r| r.sandbox_id() == Some(sandbox_id.as_str()))
                .cloned()))),
            Effect::DeleteProject(key, version) => {
                let project = key_of(key);
                let outcome = match (self.projects.get(&project), version) {
                    (None, None) => Err(StoreError::NotFound),
                    (None, Some(_)) => Err(StoreError::Conflict { current: None }),
                    (Some(record), Some(version)) if record.version != *version => {
                        Err(StoreError::Conflict { current: None })
                    }
                    (Some(_), _) => {
                        self.projects.remove(&project);
                        self.marks.remove(&project);
                        Ok(())
                    }
                };
                done(Outcome::Done(outcome))
            }
            Effect::CreateProject(spec, fork) => {
                let project = key_of(&spec.key);
                if self.projects.contains_key(&project) {
                    return done(Outcome::Created(Err(StoreError::Conflict { current: None })));
                }
                let record = new_record(spec, fork.clone(), now);
                self.projects.insert(project, record.clone());
                done(Outcome::Created(Ok(record)))
            }
            Effect::ClearFork(key) => {
                let record = self.projects.get_mut(key.project.as_str());
                let cleared = record.is_some_and(|record| {
                    let was = record.project.fork_of.take().is_some();
                    record.version += u64::from(was);
                    was
                });
                done(Outcome::Flag(Ok(cleared)))
            }
            Effect::MarkLiveFork(source, fork, until) => {
                let running = self.record(source).and_then(ProjectRecord::state) == Some(SessionState::Running);
                let marks = self.marks.entry(key_of(source)).or_default();
                let free = marks.live_fork.as_ref().is_none_or(|(_, until)| *until < now);
                if running && free {
                    marks.live_fork = Some((fork.as_str().to_owned(), *until));
                }
                done(Outcome::Flag(Ok(running && free)))
            }
            Effect::ClearLiveFork(source, fork) => {
                let marks = self.marks.entry(key_of(source)).or_default();
                if marks.live_fork.as_ref().is_some_and(|(by, _)| by == fork.as_str()) {
                    marks.live_fork = None;
                }
                done(Outcome::Done(Ok(())))
            }
            Effect::ListSnapshots(key, limit) => {
                let mut rows = self.snapshots_of(key.project.as_str());
                rows.truncate(*limit);
                done(Outcome::Snapshots(Ok(rows)))
            }
            Effect::GetSnapshot(key, id) => done(Outcome::Snapshot(Ok(self
                .snapshots
                .get(&(key_of(key), id.as_str().to_owned()))
                .map(|row| row.view())))),
            Effect::PutSnapshot(snapshot) => {
                let project = snapshot.project_id.as_str().to_owned();
                self.snapshots.insert(
                    (project.clone(), snapshot.snapshot_id.as_str().to_owned()),
                    SnapshotRow {
                        snapshot: (**snapshot).clone(),
                        held_until: None,
                        fork_holds: 0,
                        fork_held_until: None,
                    },
                );
                self.marks.entry(project).or_default().mark_prune_due(now);
                done(Outcome::Done(Ok(())))
            }
            Effect::CompleteSnapshot(key, id, e2b_id) => {
                let row = self.snapshots.get_mut(&(key_of(key), id.as_str().to_owned()));
                done(Outcome::Done(match row {
                    Some(row) if row.snapshot.status == SnapshotStatus::Pending => {
                        row.snapshot.status = SnapshotStatus::Ready;
                        row.snapshot.e2b_snapshot_id = e2b_id.clone();
                        Ok(())
                    }
                    _ => Err(StoreError::NotFound),
                }))
            }
            Effect::DeleteSnapshotRow(key, id) => {
                self.snapshots.remove(&(key_of(key), id.as_str().to_owned()));
                done(Outcome::Done(Ok(())))
            }
            Effect::MarkDeleting(key, id) => {
                let row = self.snapshots.get_mut(&(key_of(key), id.as_str().to_owned()));
                done(Outcome::SnapshotRow(match row {
                    None => Err(StoreError::NotFound),
                    Some(row)
                        if row.snapshot.pinned
                            || row.snapshot.status == SnapshotStatus::Pending
                            || row.view().held_until.is_some_and(|until| until > now) =>
                    {
                        Err(StoreError::Conflict { current: None })
                    }
                    Some(row) => {
                        row.snapshot.status = SnapshotStatus::Deleting;
                        Ok(row.view())
                    }
                }))
            }
            Effect::HoldSnapshot(key, id, until) => {
                let row = self.snapshots.get_mut(&(key_of(key), id.as_str().to_owned()));
                done(Outcome::Done(match row {
                    Some(row) if row.snapshot.status == SnapshotStatus::Ready => {
                        row.fork_holds += 1;
                        row.fork_held_until = row.fork_held_until.max(Some(*until));
                        Ok(())
                    }
                    _ => Err(StoreError::NotFound),
                }))
            }
            Effect::ReleaseSnapshot(key, id) => {
                if let Some(row) = self.snapshots.get_mut(&(key_of(key), id.as_str().to_owned())) {
                    row.held_until = None;
                }
                done(Outcome::Done(Ok(())))
            }
            Effect::ReleaseForkHold(key, id) => {
                if let Some(row) = self.snapshots.get_mut(&(key_of(key), id.as_str().to_owned())) {
                    row.fork_holds = row.fork_holds.saturating_sub(1);
                }
                done(Outcome::Done(Ok(())))
            }
            Effect::SetPinned(key, id, pinned) => {
                let row = self.snapshots.get_mut(&(key_of(key), id.as_str().to_owned()));
                done(Outcome::SnapshotRow(match row {
                    Some(row) if row.snapshot.status == SnapshotStatus::Ready => {
                        row.snapshot.pinned = *pinned;
                        Ok(row.view())
                    }
                    _ => Err(StoreError::NotFound),
                }))
            }
            Effect::MarkPruneDue(key) => {
                self.marks.entry(key_of(key)).or_default().mark_prune_due(now);
                done(Outcome::Done(Ok(())))
            }
            Effect::ReschedulePrune(key, seen, read_marks, next) => {
                let marks = self.marks.entry(key_of(key)).or_default();
                let moved = marks.prune_at == Some(*seen) && marks.prune_marks == *read_marks;
                if moved {
                    marks.prune_at = *next;
                }
                done(Outcome::Flag(Ok(moved)))
            }
            Effect::NoteEvent(..) => done(Outcome::Done(Ok(()))),
            Effect::CountUsage(_, counted) => {
                let first = self.counted.insert(counted.execution.clone());
                TableResult {
                    outcome: Outcome::Flag(Ok(first)),
                    counted_usage: first.then(|| counted.execution.clone()),
                }
            }
            Effect::ExecutionCounted(execution) => done(Outcome::Flag(Ok(self.counted.contains(execution)))),
            Effect::BudgetAllows => done(Outcome::Allowed(if budget_reached {
                Err(Error::BudgetReached("the team's budget is reached".into()))
            } else {
                Ok(())
            })),
            Effect::ProjectRoom(_) => done(Outcome::Allowed(Ok(()))),
            Effect::LiveRoom => {
                let live = self
                    .projects
                    .values()
                    .filter(|r| {
                        r.state().is_some_and(|s| {
                            matches!(
                                s,
                                SessionState::Starting
                                    | SessionState::Running
                                    | SessionState::Resuming
                                    | SessionState::Pausing
                            )
                        })
                    })
                    .count();
                done(Outcome::Allowed(if live as u32 >= live_limit {
                    Err(Error::QuotaExceeded(
                        "the team's live sandboxes are at its limit".into(),
                    ))
                } else {
                    Ok(())
                }))
            }
            Effect::AfterUsage(_) => done(Outcome::Nothing),
            Effect::Account => done(Outcome::Account(Ok(Account(ACCOUNT.into())))),
            // The model's projects have no env vars or secrets: what they are is the store's and
            // E2B's business (tests/secrets_*.rs), not the lifecycle's. An empty answer, at once.
            Effect::LaunchSettings(_) => done(Outcome::Launch(Ok(LaunchSettings::default()))),
            other => unreachable!("not a table effect: {other:?}"),
        }
    }
}

/// A project as `create_project` stores it.
pub fn new_record(
    spec: &ProjectSpec,
    fork: Option<sandman_protocol::domain::ForkSource>,
    now: OffsetDateTime,
) -> ProjectRecord {
    ProjectRecord {
        project: Project {
            team_id: spec.key.team.clone(),
            project_id: spec.key.project.clone(),
            template_id: spec.template_id.clone(),
            idle: spec.idle,
            retention: spec.retention,
            sandbox_timeout: spec.sandbox_timeout,
            snapshot_before_kill: spec.snapshot_before_kill,
            public_traffic: spec.public_traffic,
            inactivity: spec.inactivity,
            fork_of: fork,
            idle_gaps: Default::default(),
            created_at: now,
            updated_at: now,
        },
        session: None,
        version: 1,
        settings_version: 0,
        prune_marks: 0,
    }
}

/// The project a sandbox's metadata names, if any.
pub fn owner(sandbox: &Sbx) -> Option<ProjectKey> {
    metadata::owner(&sandbox.metadata).map(|(key, _)| key)
}
