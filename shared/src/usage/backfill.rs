//! Usage E2B reported in events no webhook delivery brought. E2B gives up on a delivery after
//! three attempts; the compute it reported would be missing from the team's usage and budget. The
//! reconciler reads each account's events (E2B's events API, newest first) back to where its last
//! run stopped, and counts every execution no delivery counted: the same once-per-execution
//! marker decides, so a delivery and the backfill never both count one.
//!
//! Cost: what happened since the last run, not what is stored. Per account, one small item read
//! and written; per event read, half a read unit (its execution's marker) and, only for an
//! execution no delivery counted, the usual counting transaction.

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::Sandman;
use crate::e2b::{E2b, EVENTS_PAGE};
use crate::error::Error;

/// Events can reach E2B's log out of order: each run reads this far behind where the last stopped.
const OVERLAP: Duration = Duration::from_secs(15 * 60);
/// An account never read before: how far back the first run looks.
const FIRST_LOOK: Duration = Duration::from_secs(24 * 3600);
/// At most this many pages per account and run; a run that stops short leaves its mark where it
/// was, and the next one reads again from the newest.
const MAX_PAGES: usize = 100;

/// What one account's backfill read and counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backfill {
    pub events_read: u64,
    /// Executions no delivery had counted, counted now.
    pub counted: u64,
    /// Read back to the last run's mark (or the first look's horizon).
    pub complete: bool,
}

impl Sandman {
    /// An event no delivery brought, taken now as a late delivery would be: its compute counted
    /// once per execution, and, unless a delivery already changed a session by it, what it
    /// reports decided against the session (a `killed` whose webhook was lost moves a PAUSED
    /// session, which nothing else looks at, to KILLED). `true`: its compute was counted now.
    async fn replay(&self, event: &sandman_protocol::webhook::LifecycleEvent) -> Result<bool, Error> {
        use sandman_protocol::webhook::{Receipt, WebhookFailure, apply, backfill_usage, session_of};
        let counted = backfill_usage(self, event).await?;
        if counted {
            tracing::warn!(sandbox = %event.sandbox_id, event = ?event.id, "usage no webhook delivered, counted from E2B's events");
        }
        // Without an id nothing tells a replay from a delivery: only its usage (by execution) is taken.
        let Some(id) = event.id.as_deref() else {
            return Ok(counted);
        };
        if self.store.webhook_applied(id).await? {
            return Ok(counted);
        }
        let record = session_of(self, event).await?;
        match apply(self, record, event, id).await {
            Ok(Receipt::Applied { state, .. }) => {
                tracing::warn!(sandbox = %event.sandbox_id, event = id, ?state, "an event no webhook delivered, applied from E2B's events");
            }
            Ok(_) | Err(WebhookFailure::Contended) => {}
            Err(WebhookFailure::Store(err)) => return Err(err.into()),
        }
        Ok(counted)
    }

    /// Reads `e2b`'s events since the last run and applies what no delivery applied.
    pub(crate) async fn backfill_usage(&self, e2b: &E2b) -> Result<Backfill, Error> {
        let fingerprint = e2b.fingerprint();
        let seen = self.store.events_seen(&fingerprint).await?;
        let horizon = match seen {
            Some(seen) => seen - OVERLAP,
            None => self.now() - FIRST_LOOK,
        };
        let mut report = Backfill::default();
        let mut newest: Option<OffsetDateTime> = None;
        'pages: for page in 0..MAX_PAGES {
            let events = e2b.list_events(page * EVENTS_PAGE, EVENTS_PAGE).await?;
            for event in &events {
                if event.timestamp < horizon {
                    report.complete = true;
                    break 'pages;
                }
                newest = newest.max(Some(event.timestamp));
                report.events_read += 1;
                if self.replay(event).await? {
                    report.counted += 1;
                }
            }
            if events.len() < EVENTS_PAGE {
                report.complete = true;
                break;
            }
        }
        if report.complete
            && let Some(newest) = newest
        {
            self.store.set_events_seen(&fingerprint, newest).await?;
        }
        Ok(report)
    }
}
