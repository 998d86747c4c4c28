//! The team's live-sandbox count (`TEAM#{team}` / `LIVE`): `live` units, moved in the same
//! transaction as every claim into or out of a live state (`sessions.rs`), and `liveWrites`, bumped
//! by each of those moves. The reconciler repairs `live` from the sessions themselves when E2B's
//! truth disagrees with it (a fault, or a deployment that ran before the count existed): a recount
//! is written only if `liveWrites` did not move while it counted, so a claim that raced it is never
//! lost (a count that went up and back down still moved `liveWrites`).

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

use super::expr::{n, s};
use super::query::number;
use super::{Consistency, Store, StoreError, keys};
use crate::domain::{ProjectKey, TeamId};

/// The count as read: `None` where the attribute does not exist yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveCount {
    pub live: Option<i64>,
    pub writes: Option<i64>,
}

impl Store {
    /// The team's live count, read strongly (one read unit).
    pub async fn live_count(&self, team: &TeamId) -> Result<LiveCount, StoreError> {
        let item = self
            .item(keys::team_pk(team), keys::LIVE_SK.to_owned(), Consistency::Strong)
            .await?;
        Ok(item.map_or_else(LiveCount::default, |item| LiveCount {
            live: number(&item, "live"),
            writes: number(&item, "liveWrites"),
        }))
    }

    /// Counts the units the team's sessions hold (a live state, and a restore's retiring sandbox)
    /// and stores the count, only if no unit moved since `seen` was read. Reads the team's
    /// projects from `byTeam` (about half a read unit per 30 projects) and each live one's item
    /// strongly (at most the quota's worth). Answers the count written, or `None` when a claim
    /// raced it.
    pub async fn recount_live(&self, team: &TeamId, seen: LiveCount) -> Result<Option<i64>, StoreError> {
        let mut units = 0i64;
        let mut cursor = None;
        loop {
            let page = self.list_projects(team, cursor.as_ref(), 100).await?;
            for project in &page.items {
                if !project.state.is_some_and(sandman_protocol::domain::is_live) {
                    continue;
                }
                // A live session, read strongly: its state, and a restore's retiring sandbox (which
                // holds a unit from the claim until it is killed, after the session runs again).
                let key = ProjectKey::new(team.clone(), project.project_id.clone());
                if let Some(session) = self
                    .get_project(&key, Consistency::Strong)
                    .await?
                    .and_then(|r| r.session)
                {
                    units += i64::from(sandman_protocol::domain::is_live(session.state));
                    units += i64::from(session.retiring.is_some());
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::team_pk(team)))
            .key("sk", s(keys::LIVE_SK))
            .update_expression("SET live = :units ADD liveWrites :one")
            .expression_attribute_values(":units", n(units))
            .expression_attribute_values(":one", n(1))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        request = match (seen.writes, seen.live) {
            (Some(writes), _) => request
                .condition_expression("liveWrites = :writes")
                .expression_attribute_values(":writes", n(writes)),
            (None, Some(live)) => request
                .condition_expression("attribute_not_exists(liveWrites) AND live = :live")
                .expression_attribute_values(":live", n(live)),
            (None, None) => {
                request.condition_expression("attribute_not_exists(liveWrites) AND attribute_not_exists(live)")
            }
        };
        let written = self.conditional_update(request.send().await)?;
        if written.is_some() {
            tracing::info!(team = %team, units, was = ?seen.live, "live count recounted");
        }
        Ok(written.map(|_| units))
    }
}
