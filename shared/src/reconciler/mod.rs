//! The reconciler: E2B retries a webhook only three times, so the table can drift from what E2B
//! runs. Every run compares the two and corrects the table (or E2B, for orphans) both ways.
//! Every correction of a session is a conditional [`SessionWrite`] by [`Actor::Reconciler`] with a
//! cause starting "reconciled:", so it lands in the lifecycle log and loses to any concurrent writer.
//!
//! What it reads, and why nothing is scanned:
//! - The table's RUNNING sessions: the idle index queried with no upper bound on `idleAt` (it holds
//!   exactly the RUNNING sessions). Proportional to what runs, not to the fleet.
//! - Stuck sessions: the sparse `transit` index holds only sessions mid-action, sorted by
//!   `stateSince`; the query for "entered before now - stuck_after" returns only stuck ones.
//! - E2B's running and paused sandboxes, per distinct account (default key and team keys), all
//!   pages; Sandman's are recognised by their metadata.
//! - One strong `GetItem` per Sandman sandbox E2B runs that is not a RUNNING session's current
//!   sandbox (normally none), and per stuck session. Paused sandboxes are looked up only when the
//!   orphan policy would act on a paused orphan (kill or report).
//!
//! Nothing is corrected on the list alone: a `GET` of the sandbox confirms E2B's state first (a
//! list can be older than the table read it is compared with). Only disagreements cost that call.

mod live;
mod report;
mod stuck;
mod view;

pub use report::ReconcileReport;
pub use sandman_protocol::reconcile::{OrphanAction, Outcome, decide};

use std::collections::HashSet;

use futures::future::BoxFuture;
use futures::stream;
use futures::{FutureExt, StreamExt};
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::time::Instant;
use tracing::Instrument;

use sandman_protocol::reconcile::{check_listed, check_running, repair_stuck};

use crate::Sandman;

/// `idleAt <= this` matches every RUNNING session.
const END_OF_TIME: OffsetDateTime = datetime!(9999-12-31 0:00 UTC);
const PAGE_SIZE: i32 = 100;

impl Sandman {
    /// One reconciliation run. Never fails as a whole: problems are counted and logged.
    pub async fn reconcile(&self) -> ReconcileReport {
        let started = Instant::now();
        let now = self.now();
        let span = tracing::info_span!("reconcile", now = %now);
        let mut report = self
            .reconcile_at(now, self.claiming_until(self.config.enforcer.tick_deadline))
            .instrument(span)
            .await;
        report.duration = started.elapsed();
        tracing::info!(?report, "reconcile done");
        report
    }

    async fn reconcile_at(&self, now: OffsetDateTime, deadline: Instant) -> ReconcileReport {
        let mut report = ReconcileReport::default();
        // The table first: a session RUNNING now had its sandbox before the list below is taken.
        let running = match self.store.idle_candidates(END_OF_TIME, PAGE_SIZE).await {
            Ok(running) => running,
            Err(err) => {
                tracing::error!(error = %err, "reading the running sessions failed");
                report.errors += 1;
                report.aborted = true;
                return report;
            }
        };
        let stuck = self.stuck_sessions(now).await.unwrap_or_else(|err| {
            tracing::error!(error = %err, "reading stuck sessions failed");
            report.errors += 1;
            Vec::new()
        });
        let view = self.list_e2b().await;
        report.accounts_listed = (view.accounts - view.unlisted) as u64;
        report.accounts_unlisted = view.unlisted as u64;
        report.accounts_partial = view.partial as u64;
        report.listed = view.listing.sandboxes.len() as u64;
        report.running = running.len() as u64;
        report.stuck = stuck.len() as u64;

        let running_ids: HashSet<&str> = running.iter().filter_map(|s| s.sandbox_id.as_deref()).collect();
        // Collected before awaiting: lazy adapters inside the stream make the tick's future not
        // provably `Send` (a rustc limitation with higher-ranked closures).
        let mut checks: Vec<BoxFuture<'_, Outcome>> = Vec::new();
        let listing = &view.listing;
        // Each check starts only while the run may still claim work; one that cannot is Skipped.
        let in_time = move || Instant::now() < deadline;
        checks.extend(running.iter().map(|session| {
            async move {
                if !in_time() {
                    return Outcome::Skipped;
                }
                check_running(self, session, listing).await
            }
            .boxed()
        }));
        checks.extend(stuck.iter().map(|session| {
            async move {
                if !in_time() {
                    return Outcome::Skipped;
                }
                repair_stuck(self, session, now).await
            }
            .boxed()
        }));
        checks.extend(
            listing
                .sandboxes
                .values()
                .filter(|listed| !running_ids.contains(listed.sandbox.sandbox_id.as_str()))
                .map(|listed| {
                    async move {
                        let paused_and_left = listed.sandbox.state == crate::e2b::SandboxState::Paused
                            && self.config.enforcer.orphan_policy == crate::policy::OrphanPolicy::Pause;
                        if !paused_and_left && !in_time() {
                            return Outcome::Skipped;
                        }
                        check_listed(self, listed, now).await
                    }
                    .boxed()
                }),
        );
        let outcomes: Vec<Outcome> = stream::iter(checks)
            .buffer_unordered(self.config.enforcer.concurrency.max(1))
            .collect()
            .await;
        outcomes.into_iter().for_each(|outcome| report.record(outcome));
        // The live quota's count, against what E2B now runs for each team (after the repairs).
        let live = self.repair_live_counts(&running, listing, deadline).await;
        report.live_checked = live.checked;
        report.live_recounted = live.recounted;
        report.errors += live.errors;
        // Usage whose webhook E2B gave up on, from each listed account's events.
        let backfills = view.listed.iter().map(|e2b| async move {
            match tokio::time::timeout_at(deadline, self.backfill_usage(e2b)).await {
                Ok(done) => done,
                Err(_) => Ok(crate::usage::Backfill::default()),
            }
        });
        for done in futures::future::join_all(backfills).await {
            match done {
                Ok(backfill) => {
                    report.usage_events_read += backfill.events_read;
                    report.usage_backfilled += backfill.counted;
                }
                Err(err) => {
                    tracing::error!(error = %err, "reading E2B's events for missed usage failed; the next run reads them");
                    report.errors += 1;
                }
            }
        }
        report
    }
}
