//! Every key and index attribute of the table is built here and nowhere else.
//! The layout is described in `TABLE.md` beside this file.

use crate::domain::{ProjectKey, SnapshotId, TeamId};

pub const PROJECT_SK: &str = "PROJECT";
pub const SNAPSHOT_PREFIX: &str = "SNAPSHOT#";
pub const EVENT_PREFIX: &str = "EVENT#";
pub const WEBHOOK_SK: &str = "WEBHOOK";
pub const USAGE_PREFIX: &str = "USAGE#";
pub const BUDGET_SK: &str = "BUDGET";
/// Under `TEAM#<team>`: how many live-sandbox units the team's sessions hold (`live`).
pub const LIVE_SK: &str = "LIVE";
/// One partition listing the teams whose budget was reached and whose sandboxes the enforcer
/// still has to pause: empty almost always, so a tick reads one empty page.
pub const BUDGET_REACHED_PK: &str = "BUDGET#REACHED";
pub const ENDPOINT_PREFIX: &str = "ENDPOINT#";
pub const ENDPOINT_COUNT_SK: &str = "ENDPOINTS";
pub const DELIVERY_PREFIX: &str = "DELIVERY#";
/// Under a team's partition: how many snapshots its projects hold (`counters.rs`).
pub const SNAPSHOT_COUNT_SK: &str = "SNAPSHOTS";
/// Under a project's partition: how many of its snapshots are pinned (`counters.rs`).
pub const PINNED_COUNT_SK: &str = "PINNED";
/// Under an E2B account's partition: how far back its events were read for usage (`backfill.rs`).
pub const EVENTS_SEEN_SK: &str = "EVENTS";

pub const IDLE_INDEX: &str = "idle";
pub const SANDBOX_INDEX: &str = "bySandbox";
pub const TEAM_INDEX: &str = "byTeam";
pub const PRUNE_INDEX: &str = "prune";
pub const TRANSIT_INDEX: &str = "transit";

/// Running sessions are spread over this many idle-index partitions so heartbeats from a large
/// fleet never concentrate on one; a tick with nothing idle reads one empty page per shard.
pub const IDLE_SHARDS: u32 = 16;
/// Projects due for snapshot retention, spread the same way.
pub const PRUNE_SHARDS: u32 = 4;
/// Sessions in a transitional state (STARTING, PAUSING, RESUMING, STOPPING), for the reconciler.
pub const TRANSIT_SHARDS: u32 = 4;

pub fn project_pk(key: &ProjectKey) -> String {
    format!("PROJECT#{}#{}", key.team, key.project)
}

pub fn snapshot_sk(id: &SnapshotId) -> String {
    format!("{SNAPSHOT_PREFIX}{id}")
}

/// A new lifecycle-log sort key. Monotonic within this process, so two transitions written in
/// the same millisecond still list in the order they happened.
pub fn next_event_sk() -> String {
    static GENERATOR: std::sync::Mutex<ulid::Generator> = std::sync::Mutex::new(ulid::Generator::new());
    let id = GENERATOR
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .generate()
        .unwrap_or_else(|_| ulid::Ulid::new());
    format!("{EVENT_PREFIX}{id}")
}

/// The partition of E2B account records: one item per team that registered its own key, and
/// one for the deployment's default account. Small (one item per such team) and read through a
/// cache; the reconciler queries it to list every registered account.
pub const ACCOUNTS_PK: &str = "E2B_ACCOUNTS";
pub const TEAM_ACCOUNT_PREFIX: &str = "TEAM#";

pub fn account_sk(account: &crate::team_keys::E2bAccount) -> String {
    match account {
        crate::team_keys::E2bAccount::Default => "DEFAULT".to_owned(),
        crate::team_keys::E2bAccount::Team(team) => format!("{TEAM_ACCOUNT_PREFIX}{team}"),
    }
}

/// A team's own items: usage counters, budget, outbound webhook endpoints and their count.
pub fn team_pk(team: &TeamId) -> String {
    format!("TEAM#{team}")
}

/// A period's usage counters, under a project's or a team's partition.
pub fn usage_sk(period: &str) -> String {
    format!("{USAGE_PREFIX}{period}")
}

pub fn webhook_pk(event_id: &str) -> String {
    format!("WEBHOOK#{event_id}")
}

/// An E2B account, by its key's fingerprint (never the key).
pub fn account_pk(fingerprint: &str) -> String {
    format!("ACCOUNT#{fingerprint}")
}

/// The marker of one E2B execution whose compute was counted.
pub fn execution_pk(team: &TeamId, execution: &str) -> String {
    format!("EXECUTION#{team}#{execution}")
}

pub fn endpoint_sk(endpoint_id: &str) -> String {
    format!("{ENDPOINT_PREFIX}{endpoint_id}")
}

/// One endpoint's delivery log: its own partition, newest first by message id.
pub fn deliveries_pk(team: &crate::domain::TeamId, endpoint_id: &str) -> String {
    format!("DELIVERIES#{team}#{endpoint_id}")
}

pub fn delivery_sk(message_id: &str) -> String {
    format!("{DELIVERY_PREFIX}{message_id}")
}

pub fn idle_shard(key: &ProjectKey) -> String {
    shard_name("RUNNING", key, IDLE_SHARDS)
}

pub fn idle_shards() -> impl Iterator<Item = String> {
    (0..IDLE_SHARDS).map(|n| format!("RUNNING#{n:02}"))
}

pub fn prune_shard(key: &ProjectKey) -> String {
    shard_name("PRUNE", key, PRUNE_SHARDS)
}

pub fn prune_shards() -> impl Iterator<Item = String> {
    (0..PRUNE_SHARDS).map(|n| format!("PRUNE#{n:02}"))
}

pub fn transit_shard(key: &ProjectKey) -> String {
    shard_name("TRANSIT", key, TRANSIT_SHARDS)
}

pub fn transit_shards() -> impl Iterator<Item = String> {
    (0..TRANSIT_SHARDS).map(|n| format!("TRANSIT#{n:02}"))
}

fn shard_name(prefix: &str, key: &ProjectKey, shards: u32) -> String {
    format!("{prefix}#{:02}", fnv1a(&project_pk(key)) % u64::from(shards))
}

/// A stable hash (unlike `std`'s, which is seeded per process): the shard must be the same in
/// every Lambda instance.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ProjectId, TeamId};

    fn key(team: &str, project: &str) -> ProjectKey {
        ProjectKey::new(TeamId::parse(team).unwrap(), ProjectId::parse(project).unwrap())
    }

    #[test]
    fn event_keys_sort_in_the_order_they_were_made() {
        let keys: Vec<String> = (0..1000).map(|_| next_event_sk()).collect();
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(idle_shard(&key("t", "p")), idle_shard(&key("t", "p")));
        let used: std::collections::HashSet<_> = (0..500).map(|i| idle_shard(&key("team", &format!("p{i}")))).collect();
        assert_eq!(used.len(), IDLE_SHARDS as usize);
        assert!(used.iter().all(|s| idle_shards().any(|all| &all == s)));
    }
}
