//! A pruner tick: visit the projects the `prune` index says are due, apply `plan` to each, and
//! tell the index when each is next due. A tick with nothing due reads one empty page per shard.
//!
//! Deleting is resumable: the record is marked DELETING before the E2B snapshot is deleted and
//! removed after, so a tick that dies halfway leaves no READY record pointing at nothing, and the
//! project stays due (its `pruneAt` is only moved once a pass has fully succeeded).

use std::collections::HashSet;
use tokio::time::Instant;

use futures::StreamExt;
use sandman_protocol::prune::{PassOptions, Visit, pass};
use time::OffsetDateTime;
use tracing::Instrument;

use super::report::PruneReport;
use crate::Sandman;
use crate::error::Error;
use crate::store::{PruneCandidate, keys};

/// Projects read from the index per query.
const PAGE_SIZE: i32 = 50;
/// Projects visited at once.
const CONCURRENCY: usize = 8;
impl Sandman {
    /// One pruner tick over every due project, until done or until `config.pruner.tick_deadline`
    /// (no project is started after it). Fails only when the index cannot be read; a project
    /// whose pass fails is counted in `failures` and stays due.
    pub async fn prune(&self, options: PassOptions) -> Result<PruneReport, Error> {
        let started = Instant::now();
        let deadline = self.claiming_until(self.config.pruner.tick_deadline);
        let now = self.now();
        let mut report = PruneReport {
            dry_run: options.dry_run,
            ..PruneReport::default()
        };
        // A project whose pass failed is due again at once and may come round in this tick's pages.
        let mut seen = HashSet::new();
        'shards: for shard in keys::prune_shards() {
            let mut cursor = None;
            loop {
                if Instant::now() >= deadline {
                    report.stopped_at_deadline = true;
                    break 'shards;
                }
                let page = self.store.prune_page(&shard, now, PAGE_SIZE, cursor.as_ref()).await?;
                let due: Vec<PruneCandidate> = page.items.into_iter().filter(|c| seen.insert(c.key.clone())).collect();
                let expected = due.len();
                let visits: Vec<Visit> = futures::stream::iter(due)
                    .take_while(|_| std::future::ready(Instant::now() < deadline))
                    .map(|candidate| self.visit(candidate, now, options))
                    .buffer_unordered(CONCURRENCY)
                    .collect()
                    .await;
                let stopped = visits.len() < expected;
                visits.into_iter().for_each(|visit| report.record(visit));
                if stopped {
                    report.stopped_at_deadline = true;
                    break 'shards;
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            dry_run = report.dry_run,
            visited = report.projects_visited,
            deleted = report.snapshots_deleted,
            would_delete = report.would_delete,
            failures = report.failures,
            stopped_at_deadline = report.stopped_at_deadline,
            "prune tick done"
        );
        Ok(report)
    }

    async fn visit(&self, candidate: PruneCandidate, now: OffsetDateTime, options: PassOptions) -> Visit {
        let key = candidate.key.clone();
        let span = tracing::info_span!("retention", projectId = %key);
        match pass(self, candidate, now, options).instrument(span).await {
            Ok(visit) => visit,
            Err(err) => {
                tracing::warn!(project = %key, error = %err, "retention pass failed; the project stays due");
                Visit {
                    failed: true,
                    ..Visit::default()
                }
            }
        }
    }
}
