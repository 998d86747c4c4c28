//! The single-table DynamoDB store. Layout: `TABLE.md`. Keys: `keys.rs`. Every session write is
//! conditional on the version the writer read, so concurrent writers cannot both win.

mod accounts;
mod backfill;
mod capacity;
mod counters;
mod cursor;
mod error;
mod expr;
mod holds;
mod items;
pub mod keys;
mod live;
mod log;
mod outbound;
mod projects;
mod query;
mod sessions;
mod settings;
mod snapshots;
mod time_ms;
mod transact;
mod transit;
mod usage;

pub use accounts::{AccountRecord, TeamKeyRecord};
pub use capacity::{Capacity, CapacityMeter};
pub use cursor::{Cursor, Page};
pub use live::LiveCount;
pub use projects::ProjectSummary;
pub use sandman_protocol::StoreError;
pub use sandman_protocol::port::Consistency;
pub use sandman_protocol::record::ProjectRecord;
pub use sandman_protocol::record::{
    ActivityWrite, Counted, Dedupe, FailureCount, Field, IdleCandidate, IdleDeferral, PruneCandidate, SessionChanges,
    SessionWrite, SnapshotHold, TransitSession, Written,
};
pub use settings::{Delivery, ProjectNote, Scope, ScopeSettings, SecretWrite, SettingsWrite, StoredSecret, Synced};
pub use snapshots::SnapshotAdmission;
pub use usage::{Budget, BudgetReached, PeriodUsage};

use aws_sdk_dynamodb::Client;

#[derive(Clone)]
pub struct Store {
    client: Client,
    table: String,
    capacity: CapacityMeter,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            capacity: CapacityMeter::default(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The same table and meter, its calls recorded under `function`'s name when
    /// `SANDMAN_RECORD_AWS_CALLS` is set (the local stack and the soak run every function over one
    /// client; each gets its own recorded copy).
    pub fn recorded_as(&self, function: &'static str) -> Store {
        Store {
            client: crate::aws::recorded_dynamodb(&self.client, function),
            table: self.table.clone(),
            capacity: self.capacity.clone(),
        }
    }

    /// The answer to a conditional UpdateItem, metered: `None` when its condition did not hold
    /// (DynamoDB bills that write too).
    pub(crate) fn conditional_update(
        &self,
        answer: Result<
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
            aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::update_item::UpdateItemError>,
        >,
    ) -> Result<Option<aws_sdk_dynamodb::operation::update_item::UpdateItemOutput>, StoreError> {
        match answer {
            Ok(out) => {
                self.capacity.record_write(out.consumed_capacity());
                Ok(Some(out))
            }
            Err(err) if error::condition_failed(&err) => {
                self.capacity.record_failed_write(1.0);
                Ok(None)
            }
            Err(err) => Err(error::dynamo(err)),
        }
    }

    /// Capacity units consumed by this store's calls so far, as DynamoDB reported them.
    pub fn capacity(&self) -> &CapacityMeter {
        &self.capacity
    }
}
