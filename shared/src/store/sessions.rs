use std::time::Duration;

use aws_sdk_dynamodb::types::{
    Put, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use time::OffsetDateTime;

use sandman_protocol::adaptive::IdleLesson;

use super::expr::{Expr, n, s};
use super::items::{Item, ProjectRecord, project_record};
use super::query::{number, project_key, text};
use super::time_ms::{duration_ms, from_ms, to_ms, ttl_seconds};
use super::{Consistency, Cursor, Page, Store, StoreError, keys};
use crate::domain::{
    Actor, CLAIM_LEASE, CapHandoff, IdlePolicy, ProjectId, ProjectKey, SessionState, SnapshotStatus, TeamId, transition,
};

/// How long a project's lifecycle log is kept.
pub(crate) const EVENT_LOG_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

pub use sandman_protocol::record::{
    ActivityWrite, Dedupe, FailureCount, Field, IdleCandidate, IdleDeferral, SessionChanges, SessionWrite,
    SnapshotHold, Written,
};

impl Store {
    /// Applies one session write. Errors: `Refused` (the state machine said no, nothing sent),
    /// `Conflict` (someone else wrote first), `Duplicate` (the webhook event was applied before),
    /// `NotFound` (the snapshot to hold is not READY: missing, pending or being deleted).
    pub async fn write_session(&self, write: &SessionWrite) -> Result<Written, StoreError> {
        let to = write.event.map(|event| transition(write.from, event)).transpose()?;
        let update = self.session_update(write, to)?;
        let mut transaction = vec![TransactWriteItem::builder().update(update).build()];
        if let Some(to) = to {
            transaction.push(TransactWriteItem::builder().put(self.log_put(write, to)?).build());
        }
        if let Some(dedupe) = &write.dedupe {
            transaction.push(TransactWriteItem::builder().put(self.dedupe_put(dedupe)?).build());
        }
        let hold_at = write.hold.as_ref().map(|_| transaction.len());
        if let Some(hold) = &write.hold {
            let update = self.hold_update(&write.key, hold)?;
            transaction.push(TransactWriteItem::builder().update(update).build());
        }
        let live_at = (write.live_delta(to) != 0).then_some(transaction.len());
        if let Some(update) = self.live_units(write, to)? {
            transaction.push(TransactWriteItem::builder().update(update).build());
        }
        let items = transaction.len() as f64;
        match self.transact(transaction).await {
            Ok(out) => {
                self.capacity.record_write(out.consumed_capacity());
                Ok(Written {
                    version: write.expected_version + 1,
                    state: to.or(write.from),
                })
            }
            Err(err) => {
                let refused = self.cancellation(err, hold_at, live_at.zip(write.live_limit));
                if matches!(
                    refused,
                    StoreError::Conflict { .. } | StoreError::Duplicate | StoreError::NotFound
                ) {
                    self.capacity.record_failed_write(2.0 * items);
                }
                Err(refused)
            }
        }
    }

    fn session_update(&self, write: &SessionWrite, to: Option<SessionState>) -> Result<Update, StoreError> {
        let mut e = Expr::default();
        let at = to_ms(write.at);
        let (version, expected) = (e.name("version"), e.value(n(write.expected_version)));
        e.condition(format!("{version} = {expected}"));
        let state = e.name("state");
        match write.from {
            Some(from) => {
                let from = e.value(s(from.as_str()));
                e.condition(format!("{state} = {from}"))
            }
            None => e.condition(format!("attribute_not_exists({state})")),
        };
        if let Some(idle_by) = write.idle_by {
            let (idle_at, by) = (e.name("idleAt"), e.value(n(to_ms(idle_by))));
            e.condition(format!("{idle_at} <= {by}"));
        }
        e.set("version", n(write.expected_version + 1)).set("updatedAt", n(at));
        let c = &write.changes;
        if let Some(to) = to {
            e.set("state", s(to.as_str()))
                .set("stateSince", n(at))
                .set("lastActor", s(write.actor.as_str()))
                .set("lastCause", s(&write.cause));
            if c.last_active_at.is_none() {
                // A first claim starts the activity clock (`record::apply` does the same).
                let (active, now) = (e.name("lastActiveAt"), e.value(n(at)));
                e.set_expression("lastActiveAt", format!("if_not_exists({active}, {now})"));
            }
            if to == SessionState::Running {
                e.set("idleShard", s(keys::idle_shard(&write.key)));
                let timeout = e.name("idleTimeoutMs");
                let active = match c.last_active_at {
                    Some(active) => e.value(n(to_ms(active))),
                    None => {
                        let (active, now) = (e.name("lastActiveAt"), e.value(n(at)));
                        format!("if_not_exists({active}, {now})")
                    }
                };
                e.set_expression("idleAt", format!("{timeout} + {active}"));
            } else {
                e.remove("idleShard").remove("idleAt");
            }
            if to.is_transitional() {
                e.set("transitShard", s(keys::transit_shard(&write.key)))
                    .set("leaseUntil", n(to_ms(write.at + CLAIM_LEASE)));
            } else {
                e.remove("transitShard").remove("leaseUntil");
            }
            if to == SessionState::Paused {
                e.set("pausedAt", n(at));
            }
            match to {
                // A pause (or a new sandbox) starts E2B's continuous-run window again.
                SessionState::Running => {
                    let (since, now) = (e.name("runningSince"), e.value(n(at)));
                    e.set_expression("runningSince", format!("if_not_exists({since}, {now})"));
                }
                SessionState::Paused | SessionState::Killed | SessionState::Starting | SessionState::Resuming => {
                    e.remove("runningSince").remove("busySince").remove("busyUntil");
                }
                SessionState::Pausing | SessionState::Stopping => {}
            }
            if matches!(to, SessionState::Paused | SessionState::Killed) {
                // The inactivity tiers start counting: the pruner looks at the project once more
                // and schedules them (a due time is only ever moved earlier here).
                e.mark_prune_due(keys::prune_shard(&write.key), at);
            }
        }
        self.apply_changes(&mut e, write, to);
        Update::builder()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(&write.key)))
            .key("sk", s(keys::PROJECT_SK))
            .update_expression(e.update_expression())
            .set_condition_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(super::error::build)
    }

    fn apply_changes(&self, e: &mut Expr, write: &SessionWrite, to: Option<SessionState>) {
        let c = &write.changes;
        if let Some(retiring) = &c.retiring {
            e.set("retiringSandbox", s(retiring));
        }
        if let Some(lesson) = &c.idle_lesson {
            learn(e, lesson);
        }
        if let Some(id) = &c.session_id {
            e.set("sessionId", s(id));
        }
        if let Some(sandbox) = &c.sandbox {
            e.set("sandboxId", s(&sandbox.sandbox_id))
                .set("sandboxKey", s(&sandbox.sandbox_id));
            match &sandbox.domain {
                Some(domain) => e.set("sandboxDomain", s(domain)),
                None => e.remove("sandboxDomain"),
            };
            // Events and the reconciler name a sandbox without its token: they keep the one open stored.
            if let Some(token) = &sandbox.access_token {
                e.set("sandboxAccessToken", s(token.expose()));
            }
        }
        if let Some(active) = c.last_active_at {
            e.set("lastActiveAt", n(to_ms(active)));
            if to.is_none() {
                let (timeout, value) = (e.name("idleTimeoutMs"), e.value(n(to_ms(active))));
                e.set_expression("idleAt", format!("{timeout} + {value}"));
            }
        }
        if let Some(timeout_at) = c.timeout_at {
            e.set("timeoutAt", n(to_ms(timeout_at)));
        }
        match &c.last_error {
            Field::Set(error) => e.set("lastError", s(error)),
            Field::Clear => e.remove("lastError"),
            Field::Keep => e,
        };
        match c.failures {
            FailureCount::Keep => {}
            FailureCount::Reset => {
                e.set("failures", n(0));
            }
            FailureCount::Increment => {
                let (failures, zero, one) = (e.name("failures"), e.value(n(0)), e.value(n(1)));
                e.set_expression("failures", format!("if_not_exists({failures}, {zero}) + {one}"));
            }
        }
        match &c.restored_from {
            Field::Set(snapshot) => e.set("restoredFrom", s(snapshot.as_str())),
            Field::Clear => e.remove("restoredFrom"),
            Field::Keep => e,
        };
        // Only a claim replaces a sandbox: any write that leaves the transitional state ends it.
        match (&c.replaces_session, to) {
            (Field::Set(session), _) => e.set("replacesSession", s(session)),
            (Field::Clear, _) => e.remove("replacesSession"),
            (Field::Keep, Some(to)) if !to.is_transitional() => e.remove("replacesSession"),
            (Field::Keep, _) => e,
        };
        if let Some(event_at) = c.event_at {
            e.set("lastEventAt", n(to_ms(event_at)));
        }
        if let Some(version) = c.settings_version {
            e.set("sandboxSettingsVersion", n(version));
        }
    }

    fn log_put(&self, write: &SessionWrite, to: SessionState) -> Result<Put, StoreError> {
        let mut item: Item = [
            ("pk", s(keys::project_pk(&write.key))),
            ("sk", s(keys::next_event_sk())),
            ("at", n(to_ms(write.at))),
            ("actor", s(write.actor.as_str())),
            ("cause", s(&write.cause)),
            ("to", s(to.as_str())),
            ("expiresAt", n(ttl_seconds(write.at + EVENT_LOG_TTL))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(from) = write.from {
            item.insert("from".into(), s(from.as_str()));
        }
        if let Some(sandbox) = &write.changes.sandbox {
            item.insert("sandboxId".into(), s(&sandbox.sandbox_id));
        }
        // Outbound webhooks tell a restore from a fresh start by it (`sandbox.restored`).
        if let Field::Set(snapshot) = &write.changes.restored_from {
            item.insert("restoredFrom".into(), s(snapshot.as_str()));
        }
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(super::error::build)
    }

    fn dedupe_put(&self, dedupe: &Dedupe) -> Result<Put, StoreError> {
        Put::builder()
            .table_name(&self.table)
            .item("pk", s(keys::webhook_pk(&dedupe.id)))
            .item("sk", s(keys::WEBHOOK_SK))
            .item("expiresAt", n(ttl_seconds(dedupe.expires_at)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(super::error::build)
    }

    /// The hold a restore's claim writes on its snapshot: only on a READY one.
    fn hold_update(&self, key: &ProjectKey, hold: &SnapshotHold) -> Result<Update, StoreError> {
        Update::builder()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(key)))
            .key("sk", s(keys::snapshot_sk(&hold.snapshot_id)))
            .update_expression("SET heldUntil = :until")
            .condition_expression("attribute_exists(pk) AND #status = :ready")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":until", n(to_ms(hold.until)))
            .expression_attribute_values(":ready", s(super::items::status_name(SnapshotStatus::Ready)))
            .build()
            .map_err(super::error::build)
    }

    /// What a cancelled session transaction means: its item 0 is the session, `hold_at` a
    /// snapshot hold, `live_at` the team's live units (with the limit it was refused at).
    fn cancellation(
        &self,
        err: super::transact::TransactError,
        hold_at: Option<usize>,
        live_at: Option<(usize, u32)>,
    ) -> StoreError {
        let Some(
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                cancel,
            ),
        ) = err.as_service_error()
        else {
            return super::transact::spent(err);
        };
        let reasons = cancel.cancellation_reasons();
        let failed = |i: usize| reasons.get(i).and_then(|r| r.code()) == Some("ConditionalCheckFailed");
        if failed(0) {
            let current = reasons[0]
                .item()
                .cloned()
                .and_then(|item| project_record(item).ok())
                .map(Box::new);
            return StoreError::Conflict { current };
        }
        if hold_at.is_some_and(failed) {
            return StoreError::NotFound;
        }
        if let Some((at, limit)) = live_at
            && failed(at)
        {
            return StoreError::LiveQuota { limit };
        }
        if (1..reasons.len()).any(failed) {
            return StoreError::Duplicate;
        }
        super::transact::spent(err)
    }

    /// The team's live-sandbox units moved by `write` (into `to`): an ADD in the write's
    /// transaction, conditional on room under `live_limit` when the write takes a unit to start
    /// compute. `None` when the write moves no unit.
    fn live_units(&self, write: &SessionWrite, to: Option<SessionState>) -> Result<Option<Update>, StoreError> {
        let delta = write.live_delta(to);
        if delta == 0 {
            return Ok(None);
        }
        let request = Update::builder()
            .table_name(&self.table)
            .key("pk", s(keys::team_pk(&write.key.team)))
            .key("sk", s(keys::LIVE_SK))
            .update_expression("ADD live :delta, liveWrites :one")
            .expression_attribute_values(":delta", n(delta))
            .expression_attribute_values(":one", n(1));
        let request = match write.live_limit.filter(|_| delta > 0) {
            Some(limit) => request
                .condition_expression("attribute_not_exists(live) OR live <= :room")
                .expression_attribute_values(":room", n(i64::from(limit) - delta)),
            None => request,
        };
        request.build().map(Some).map_err(super::error::build)
    }

    /// Releases the unit a session's `retiring` sandbox held, once it no longer runs: only while the
    /// session still names `sandbox_id` as retiring (one release per retirement).
    pub async fn release_retiring(&self, key: &ProjectKey, sandbox_id: &str) -> Result<bool, StoreError> {
        let session = Update::builder()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(key)))
            .key("sk", s(keys::PROJECT_SK))
            .update_expression("REMOVE retiringSandbox")
            .condition_expression("retiringSandbox = :id")
            .expression_attribute_values(":id", s(sandbox_id))
            .build()
            .map_err(super::error::build)?;
        let units = Update::builder()
            .table_name(&self.table)
            .key("pk", s(keys::team_pk(&key.team)))
            .key("sk", s(keys::LIVE_SK))
            .update_expression("ADD live :minus, liveWrites :one")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(super::error::build)?;
        let items = vec![
            TransactWriteItem::builder().update(session).build(),
            TransactWriteItem::builder().update(units).build(),
        ];
        self.transact_if(items, 4.0).await
    }

    /// A heartbeat: moves `lastActiveAt` (and the idle deadline) of a session still RUNNING
    /// `sandbox_id`, unless one was recorded since `not_since`. Returns whether it wrote. Never
    /// bumps the version: it is not a transition, and must not make a concurrent transition fail.
    pub async fn record_activity(
        &self,
        key: &ProjectKey,
        sandbox_id: &str,
        at: OffsetDateTime,
        not_since: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let activity = ActivityWrite {
            at,
            not_since: Some(not_since),
            idle_at: None,
            busy_until: None,
            held_at_most: None,
            idle_lesson: None,
        };
        self.record_activity_with(key, sandbox_id, &activity).await
    }

    /// Activity with its idle deadline worked out by the caller: held by `busyForSeconds`, or
    /// brought forward to the session-cap handoff. Ends any run of busy deferrals.
    pub async fn record_activity_with(
        &self,
        key: &ProjectKey,
        sandbox_id: &str,
        activity: &ActivityWrite,
    ) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        e.set("lastActiveAt", n(to_ms(activity.at))).remove("busySince");
        match activity.idle_at {
            Some(idle_at) => e.set("idleAt", n(to_ms(idle_at))),
            None => {
                let (timeout, at_v) = (e.name("idleTimeoutMs"), e.value(n(to_ms(activity.at))));
                e.set_expression("idleAt", format!("{timeout} + {at_v}"))
            }
        };
        if let Some(busy_until) = activity.busy_until {
            e.set("busyUntil", n(to_ms(busy_until)));
        }
        if let Some(lesson) = &activity.idle_lesson {
            learn(&mut e, lesson);
        }
        if let Some(not_since) = activity.not_since {
            let (active, since) = (e.name("lastActiveAt"), e.value(n(to_ms(not_since))));
            e.condition(format!("{active} < {since}"));
        }
        if let Some(floor) = activity.held_at_most {
            // A hold written after our read would be cut short: refuse, and the caller reads again.
            let (held, floor) = (e.name("busyUntil"), e.value(n(to_ms(floor))));
            e.condition(format!("(attribute_not_exists({held}) OR {held} <= {floor})"));
        }
        self.update_running_sandbox(key, sandbox_id, e).await
    }

    /// A busy deferral: the idle enforcer found the sandbox busy and moves its idle deadline to
    /// `idle_at`, starting the deferral clock (`busySince`) if it is not running, with a
    /// lifecycle-log line (RUNNING to RUNNING) naming the cause. Conditional on the idle
    /// deadline the tick read, so activity in between wins. No version bump, as for heartbeats.
    pub async fn defer_idle(&self, deferral: &IdleDeferral) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        let (version, expected) = (e.name("version"), e.value(n(deferral.expected_version)));
        let (state, running) = (e.name("state"), e.value(s(SessionState::Running.as_str())));
        let (idle, read) = (e.name("idleAt"), e.value(n(to_ms(deferral.read_idle_at))));
        e.condition(format!(
            "{version} = {expected} AND {state} = {running} AND {idle} = {read}"
        ));
        let (since, now) = (e.name("busySince"), e.value(n(to_ms(deferral.at))));
        e.set("idleAt", n(to_ms(deferral.idle_at)))
            .set_expression("busySince", format!("if_not_exists({since}, {now})"));
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(&deferral.key)))
            .key("sk", s(keys::PROJECT_SK))
            .update_expression(e.update_expression())
            .set_condition_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .build()
            .map_err(super::error::build)?;
        let line = SessionWrite {
            key: deferral.key.clone(),
            expected_version: deferral.expected_version,
            from: Some(SessionState::Running),
            event: None,
            actor: Actor::IdleEnforcer,
            cause: deferral.cause.clone(),
            at: deferral.at,
            changes: SessionChanges::default(),
            idle_by: None,
            dedupe: None,
            hold: None,
            live_limit: None,
        };
        let transaction = vec![
            TransactWriteItem::builder().update(update).build(),
            TransactWriteItem::builder()
                .put(self.log_put(&line, SessionState::Running)?)
                .build(),
        ];
        match self.transact(transaction).await {
            Ok(out) => {
                self.capacity.record_write(out.consumed_capacity());
                Ok(true)
            }
            Err(err) => match self.cancellation(err, None, None) {
                StoreError::Conflict { .. } => {
                    self.capacity.record_failed_write(4.0);
                    Ok(false)
                }
                other => Err(other),
            },
        }
    }

    /// E2B's timeout of the session's sandbox was extended to `timeout_at`.
    pub async fn record_timeout(
        &self,
        key: &ProjectKey,
        sandbox_id: &str,
        timeout_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        e.set("timeoutAt", n(to_ms(timeout_at)));
        self.update_running_sandbox(key, sandbox_id, e).await
    }

    /// An update applied only while the session is RUNNING `sandbox_id`.
    async fn update_running_sandbox(
        &self,
        key: &ProjectKey,
        sandbox_id: &str,
        mut e: Expr,
    ) -> Result<bool, StoreError> {
        let (state, running, sandbox, id) = (
            e.name("state"),
            e.value(s(SessionState::Running.as_str())),
            e.name("sandboxId"),
            e.value(s(sandbox_id)),
        );
        e.condition(format!("{state} = {running} AND {sandbox} = {id}"));
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(key)))
            .key("sk", s(keys::PROJECT_SK))
            .update_expression(e.update_expression())
            .set_condition_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match self.conditional_update(out)? {
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }

    /// One page of one idle-index shard: running sessions whose idle deadline is at or before `now`,
    /// oldest deadline first.
    pub async fn idle_page(
        &self,
        shard: &str,
        now: OffsetDateTime,
        limit: i32,
        cursor: Option<&Cursor>,
    ) -> Result<Page<IdleCandidate>, StoreError> {
        let query = self
            .client
            .query()
            .index_name(keys::IDLE_INDEX)
            .key_condition_expression("idleShard = :shard AND idleAt <= :now")
            .expression_attribute_values(":shard", s(shard))
            .expression_attribute_values(":now", n(to_ms(now)));
        self.page(query, cursor, limit, idle_candidate).await
    }

    /// Every idle candidate across all shards, page by page (shards queried concurrently).
    pub async fn idle_candidates(&self, now: OffsetDateTime, page_size: i32) -> Result<Vec<IdleCandidate>, StoreError> {
        let shards = keys::idle_shards().map(|shard| async move {
            let mut found = Vec::new();
            let mut cursor = None;
            loop {
                let page = self.idle_page(&shard, now, page_size, cursor.as_ref()).await?;
                found.extend(page.items);
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => return Ok::<_, StoreError>(found),
                }
            }
        });
        let pages = futures::future::try_join_all(shards).await?;
        Ok(pages.into_iter().flatten().collect())
    }

    /// The project that holds `sandbox_id`, given `named` (already read): the project its
    /// metadata names, under `named_key`. When `named` does not hold it (it is missing, or its
    /// current sandbox is another), the sandbox is looked up by id (`bySandbox`): a live fork's
    /// sandbox carries its source's metadata. Only another project of the same team is taken;
    /// otherwise `named` is returned as it was. No read when `named` holds the sandbox.
    pub async fn holder_of(
        &self,
        named_key: &ProjectKey,
        named: Option<ProjectRecord>,
        sandbox_id: &str,
    ) -> Result<Option<ProjectRecord>, StoreError> {
        let holds = named
            .as_ref()
            .and_then(|record| record.session.as_ref())
            .and_then(|session| session.sandbox.as_ref())
            .is_some_and(|sandbox| sandbox.sandbox_id == sandbox_id);
        if holds {
            return Ok(named);
        }
        match self.find_by_sandbox(sandbox_id).await? {
            Some(holder) if holder.project.team_id == named_key.team && holder.project.key() != *named_key => {
                Ok(Some(holder))
            }
            _ => Ok(named),
        }
    }

    /// The project whose current or last sandbox is `sandbox_id`, for events that carry no
    /// Sandman metadata.
    pub async fn find_by_sandbox(&self, sandbox_id: &str) -> Result<Option<ProjectRecord>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::SANDBOX_INDEX)
            .key_condition_expression("sandboxKey = :id")
            .expression_attribute_values(":id", s(sandbox_id))
            .limit(1)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(super::error::dynamo)?;
        self.capacity.record_read(out.consumed_capacity());
        let Some(key) = out.items().first().and_then(project_key_of) else {
            return Ok(None);
        };
        self.get_project(&key, Consistency::Strong).await
    }
}

/// What adaptive idle learned: the project's gaps and the idle timeout they give. Any `idleAt`
/// set from `idleTimeoutMs` in the same write still reads the old timeout (DynamoDB evaluates
/// against the old item), as `record::apply` does.
fn learn(e: &mut Expr, lesson: &IdleLesson) {
    e.set("learnedGaps", s(lesson.gaps.encode()))
        .set("idleTimeoutMs", n(duration_ms(lesson.idle_timeout)));
}

fn project_key_of(item: &Item) -> Option<ProjectKey> {
    let pk = item.get("pk")?.as_s().ok()?;
    let mut parts = pk.strip_prefix("PROJECT#")?.splitn(2, '#');
    let team = TeamId::parse(parts.next()?).ok()?;
    let project = ProjectId::parse(parts.next()?).ok()?;
    Some(ProjectKey::new(team, project))
}

fn idle_candidate(item: &Item) -> Result<IdleCandidate, StoreError> {
    let corrupt = |name: &str| StoreError::Corrupt(format!("idle index entry: no {name}"));
    let number = |name: &str| number(item, name);
    Ok(IdleCandidate {
        key: project_key(item, "idle")?,
        sandbox_id: text(item, "sandboxId"),
        version: number("version").ok_or_else(|| corrupt("version"))?.max(0) as u64,
        idle_at: from_ms(number("idleAt").ok_or_else(|| corrupt("idleAt"))?),
        idle_timeout: Duration::from_millis(number("idleTimeoutMs").unwrap_or_default().max(0) as u64),
        snapshot_on_idle: item
            .get("snapshotOnIdle")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        failures: number("failures").unwrap_or_default().clamp(0, i64::from(u32::MAX)) as u32,
        timeout_at: number("timeoutAt").map(from_ms),
        busy_cpu_percent: number("busyCpuPercent").map(|pct| pct.clamp(0, 100) as u8),
        max_busy_deferral: number("busyDeferMaxMs").map_or(IdlePolicy::default().max_busy_deferral, |ms| {
            Duration::from_millis(ms.max(0) as u64)
        }),
        busy_since: number("busySince").map(from_ms),
        running_since: number("runningSince").map(from_ms),
        cap_handoff: text(item, "capHandoff")
            .as_deref()
            .and_then(CapHandoff::parse)
            .unwrap_or_default(),
    })
}
