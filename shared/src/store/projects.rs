use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, ReturnValue};
use time::OffsetDateTime;

use super::error::condition_failed;
use super::expr::{Expr, n, s};
use super::items::{ProjectRecord, project_record};
use super::query::{number, project_key, text};
use super::time_ms::{duration_ms, from_ms, to_ms};
use super::{Consistency, Cursor, Page, Store, StoreError, keys};
use crate::domain::{ProjectId, ProjectKey, SessionState, TeamId};

/// A line of a team's project list, read from the `byTeam` index alone.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectSummary {
    pub project_id: ProjectId,
    pub template_id: String,
    pub state: Option<SessionState>,
    pub sandbox_id: Option<String>,
    pub state_since: Option<OffsetDateTime>,
}

impl Store {
    /// Creates the project or updates its settings, never touching its session's state.
    /// A running session's idle deadline follows a new idle timeout in the same write.
    pub async fn put_project(
        &self,
        spec: &crate::domain::ProjectSpec,
        now: OffsetDateTime,
    ) -> Result<ProjectRecord, StoreError> {
        self.write_project(spec, None, false, now).await
    }

    /// Creates the project; `Conflict` when it exists already (a live fork's new project).
    pub async fn put_new_project(
        &self,
        spec: &crate::domain::ProjectSpec,
        now: OffsetDateTime,
    ) -> Result<ProjectRecord, StoreError> {
        self.write_project(spec, None, true, now).await
    }

    /// Marks a RUNNING project as the source of a live fork under way, by `fork` until `until`, so
    /// that live forks of one source run one at a time: every sandbox E2B forks from it carries
    /// its metadata, and only one at a time lets an ambiguous fork tell its own apart. `false`
    /// when the source is not RUNNING or another live fork's mark has not lapsed. Not a session
    /// write: no version bump, no conflict with the source's own transitions.
    pub async fn mark_live_fork(
        &self,
        source: &ProjectKey,
        fork: &ProjectId,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(source)))
            .key("sk", s(keys::PROJECT_SK))
            .update_expression("SET liveForkBy = :fork, liveForkUntil = :until")
            .condition_expression("#state = :running AND (attribute_not_exists(liveForkUntil) OR liveForkUntil < :now)")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":fork", s(fork.as_str()))
            .expression_attribute_values(":until", n(to_ms(until)))
            .expression_attribute_values(":now", n(to_ms(now)))
            .expression_attribute_values(":running", s(SessionState::Running.as_str()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        Ok(self.conditional_update(request.send().await)?.is_some())
    }

    /// Removes the live-fork mark `fork` left on `source` (another fork's mark stays).
    pub async fn clear_live_fork(&self, source: &ProjectKey, fork: &ProjectId) -> Result<(), StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(source)))
            .key("sk", s(keys::PROJECT_SK))
            .update_expression("REMOVE liveForkBy, liveForkUntil")
            .condition_expression("liveForkBy = :fork")
            .expression_attribute_values(":fork", s(fork.as_str()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        self.conditional_update(request.send().await)?;
        Ok(())
    }

    /// Creates a project whose first open restores `source` (a snapshot of another project of the
    /// team). `Conflict` when the project exists already.
    pub async fn put_fork(
        &self,
        spec: &crate::domain::ProjectSpec,
        source: &crate::domain::ForkSource,
        now: OffsetDateTime,
    ) -> Result<ProjectRecord, StoreError> {
        self.write_project(spec, Some(source), true, now).await
    }

    /// Once the fork's first sandbox is restored (or it could not be), it is a project like any other.
    /// Clears a fork's mark; answers whether this call did (it was there).
    pub async fn clear_fork(&self, key: &ProjectKey) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(key)))
            .key("sk", s(keys::PROJECT_SK))
            // The version moves: a delete that read the mark cannot also take the hold back.
            .update_expression("REMOVE forkProject, forkSnapshot ADD version :one")
            .condition_expression("attribute_exists(pk) AND attribute_exists(forkProject)")
            .expression_attribute_values(":one", n(1))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        Ok(self.conditional_update(request.send().await)?.is_some())
    }

    async fn write_project(
        &self,
        spec: &crate::domain::ProjectSpec,
        fork: Option<&crate::domain::ForkSource>,
        create_only: bool,
        now: OffsetDateTime,
    ) -> Result<ProjectRecord, StoreError> {
        let mut e = Expr::default();
        if create_only {
            let pk = e.name("pk");
            e.condition(format!("attribute_not_exists({pk})"));
        }
        if let Some(fork) = fork {
            e.set("forkProject", s(fork.project_id.as_str()))
                .set("forkSnapshot", s(fork.snapshot_id.as_str()));
        }
        let now_ms = to_ms(now);
        let idle_ms = duration_ms(spec.idle.idle_timeout);
        e.set("teamId", s(spec.key.team.as_str()))
            .set("projectId", s(spec.key.project.as_str()))
            .set("teamKey", s(spec.key.team.as_str()))
            .set("projectKey", s(spec.key.project.as_str()))
            .set("templateId", s(&spec.template_id))
            .set("idleTimeoutMs", n(idle_ms))
            .set("snapshotOnIdle", AttributeValue::Bool(spec.idle.snapshot_on_idle))
            .set("busyDeferMaxMs", n(duration_ms(spec.idle.max_busy_deferral)))
            .set("busyForMaxMs", n(duration_ms(spec.idle.max_busy_for)))
            .set("capHandoff", s(spec.idle.cap_handoff.as_str()))
            .set("keepLast", n(spec.retention.keep_last))
            .set("sandboxTimeoutMs", n(duration_ms(spec.sandbox_timeout)))
            .set("snapshotBeforeKill", AttributeValue::Bool(spec.snapshot_before_kill))
            .set("publicTraffic", AttributeValue::Bool(spec.public_traffic))
            .set("updatedAt", n(now_ms))
            // A changed retention policy may make snapshots prunable: let the pruner look once.
            .mark_prune_due(keys::prune_shard(&spec.key), now_ms);
        // Adaptive idle: its bounds; `idleTimeoutMs` (the spec's first timeout) is then rewritten by
        // each lesson, and `learnedGaps` by activity after a gap. Fixed: neither is kept.
        match spec.idle.adaptive {
            Some(bounds) => e
                .set("idleMode", s(super::items::IDLE_MODE_ADAPTIVE))
                .set("idleMinMs", n(duration_ms(bounds.min)))
                .set("idleMaxMs", n(duration_ms(bounds.max))),
            None => e
                .remove("idleMode")
                .remove("idleMinMs")
                .remove("idleMaxMs")
                .remove("learnedGaps"),
        };
        match spec.idle.busy_cpu_percent {
            Some(percent) => e.set("busyCpuPercent", n(percent)),
            None => e.remove("busyCpuPercent"),
        };
        match spec.retention.max_age {
            Some(age) => e.set("maxAgeMs", n(duration_ms(age))),
            None => e.remove("maxAgeMs"),
        };
        let tiers = &spec.inactivity;
        for (attribute, after) in [
            ("archiveAfterMs", tiers.archive_after),
            ("deleteAfterMs", tiers.delete_after),
        ] {
            match after {
                Some(after) => e.set(attribute, n(duration_ms(after))),
                None => e.remove(attribute),
            };
        }
        e.set("deletePinned", AttributeValue::Bool(tiers.delete_pinned));
        let (created, version, active, now_v, zero, idle_v) = (
            e.name("createdAt"),
            e.name("version"),
            e.name("lastActiveAt"),
            e.value(n(now_ms)),
            e.value(n(0)),
            e.value(n(idle_ms)),
        );
        e.set_expression("createdAt", format!("if_not_exists({created}, {now_v})"))
            .set_expression("version", format!("if_not_exists({version}, {zero})"))
            .set_expression("idleAt", format!("if_not_exists({active}, {now_v}) + {idle_v}"));
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(&spec.key)))
            .key("sk", s(keys::PROJECT_SK))
            .update_expression(e.update_expression())
            .set_condition_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_values(ReturnValue::AllNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let Some(out) = self.conditional_update(out)? else {
            return Err(StoreError::Conflict { current: None });
        };
        project_record(out.attributes.unwrap_or_default())
    }

    pub async fn get_project(
        &self,
        key: &ProjectKey,
        consistency: Consistency,
    ) -> Result<Option<ProjectRecord>, StoreError> {
        let item = self
            .item(keys::project_pk(key), keys::PROJECT_SK.to_string(), consistency)
            .await?;
        item.map(project_record).transpose()
    }

    pub async fn list_projects(
        &self,
        team: &TeamId,
        cursor: Option<&Cursor>,
        limit: i32,
    ) -> Result<Page<ProjectSummary>, StoreError> {
        let query = self
            .client
            .query()
            .index_name(keys::TEAM_INDEX)
            .key_condition_expression("teamKey = :team")
            .expression_attribute_values(":team", s(team.as_str()));
        self.page(query, cursor, limit, summary).await
    }

    /// Removes the project item; with `version`, only while it still holds that version. Its
    /// snapshots are removed by the snapshot service first; its lifecycle log expires by TTL.
    pub async fn delete_project(&self, key: &ProjectKey, version: Option<u64>) -> Result<(), StoreError> {
        let request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(key)))
            .key("sk", s(keys::PROJECT_SK))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let request = match version {
            Some(version) => request
                .condition_expression("#version = :version")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":version", n(version)),
            None => request.condition_expression("attribute_exists(pk)"),
        };
        let out = request.send().await;
        match out {
            Ok(out) => self.capacity.record_write(out.consumed_capacity()),
            Err(err) if condition_failed(&err) => {
                self.capacity.record_failed_write(1.0);
                return match version {
                    Some(_) => Err(StoreError::Conflict { current: None }),
                    None => Err(StoreError::NotFound),
                };
            }
            Err(err) => return Err(super::error::dynamo(err)),
        }
        // Its pin count (zero: every snapshot went first), if it ever pinned one.
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(keys::project_pk(key)))
            .key("sk", s(keys::PINNED_COUNT_SK))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(super::error::dynamo)?;
        self.capacity.record_write(out.consumed_capacity());
        Ok(())
    }
}

fn summary(item: &super::items::Item) -> Result<ProjectSummary, StoreError> {
    Ok(ProjectSummary {
        project_id: project_key(item, "byTeam")?.project,
        template_id: text(item, "templateId").unwrap_or_default(),
        state: text(item, "state").as_deref().and_then(SessionState::parse),
        sandbox_id: text(item, "sandboxId"),
        state_since: number(item, "stateSince").map(from_ms),
    })
}
