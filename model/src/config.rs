//! What the model explores: the team's projects and where they start, the actors, what each may
//! do, and how many of each fault. `ci` is the bound `make test` runs; `full` is the issue's
//! (1 team x 2 projects, depth 12 or more).

use std::time::Duration;

use sandman_protocol::domain::{
    Actor, IdlePolicy, ProjectSpec, RetentionPolicy, SandboxRef, Secret, Session, SessionState, Snapshot, SnapshotId,
    SnapshotKind, SnapshotStatus, Usage,
};
use sandman_protocol::policy::{OrphanPolicy, Rules};

use crate::ops::{key, session_metadata};
use crate::state::{Budget, Facts, Role, Slot, State};
use crate::world::{E2bWorld, Sbx, SbxState, SnapshotRow, Table, at, new_record};

/// How long a model project may idle before the enforcer pauses it: two ticks.
pub const IDLE: Duration = Duration::from_secs(60);

/// One actor: its role, how many operations it may start, and (for an API instance) which:
/// `open p1`, `resume p1`, `pause p1`, `kill p1`, `heartbeat p1`, `delete p1`, `restore p1`
/// (from each of its snapshots), `fork p1`.
#[derive(Debug, Clone)]
pub struct SlotConfig {
    pub role: Role,
    pub ops: u8,
    pub menu: Vec<String>,
}

fn api(ops: u8, menu: &[&str]) -> SlotConfig {
    SlotConfig {
        role: Role::Api,
        ops,
        menu: menu.iter().map(|m| m.to_string()).collect(),
    }
}

fn actor(role: Role, ops: u8) -> SlotConfig {
    SlotConfig {
        role,
        ops,
        menu: Vec::new(),
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub projects: Vec<String>,
    pub slots: Vec<SlotConfig>,
    pub budget: Budget,
    pub live_quota: u32,
    pub depth: usize,
    /// Which starting worlds: `fresh` (two projects, never opened), `settled` (one running with a
    /// snapshot, one paused).
    pub seeds: Vec<&'static str>,
    pub orphan_policy: OrphanPolicy,
}

impl Config {
    /// The scenarios of a bound: each explored exhaustively to the bound's depth.
    pub fn bound(name: &str) -> Option<Vec<Config>> {
        let depth = match name {
            "ci" => 9,
            "full" => 12,
            _ => return None,
        };
        Some(scenarios().into_iter().map(|c| Config { depth, ..c }).collect())
    }

    fn scenario(name: &str, seeds: &[&'static str], slots: Vec<SlotConfig>, budget: Budget) -> Config {
        Config {
            name: name.to_owned(),
            projects: vec!["p1".to_string(), "p2".to_string()],
            slots,
            budget,
            live_quota: 1,
            depth: 12,
            seeds: seeds.to_vec(),
            orphan_policy: OrphanPolicy::Kill,
        }
    }

    pub fn rules(&self) -> Rules {
        Rules {
            stuck_after: Duration::from_secs(60),
            orphan_policy: self.orphan_policy,
            max_failures: 5,
            session_caps: Default::default(),
            heartbeat_interval_max: Duration::from_secs(300),
            live_per_team: self.live_quota,
            // The model admits every snapshot row (no snapshot quota, no pin limit).
            ..Rules::default()
        }
    }

    pub fn seeds(&self) -> Vec<State> {
        self.seeds.iter().map(|seed| self.seed(seed)).collect()
    }

    fn seed(&self, seed: &str) -> State {
        let mut table = Table::default();
        let mut e2b = E2bWorld {
            next: 10,
            ..E2bWorld::default()
        };
        for project in &self.projects {
            let spec = ProjectSpec {
                key: key(project),
                template_id: "base".into(),
                idle: IdlePolicy {
                    idle_timeout: IDLE,
                    ..IdlePolicy::default()
                },
                retention: RetentionPolicy::default(),
                sandbox_timeout: Duration::from_secs(300),
                snapshot_before_kill: false,
                public_traffic: false,
                inactivity: Default::default(),
            };
            table.projects.insert(project.clone(), new_record(&spec, None, at(0)));
        }
        if seed == "settled" {
            settle(&mut table, &mut e2b, "p1", "sb1", SessionState::Running);
            settle(&mut table, &mut e2b, "p2", "sb2", SessionState::Paused);
            let snapshot = Snapshot {
                snapshot_id: SnapshotId::parse("snap1").expect("id"),
                team_id: key("p1").team,
                project_id: key("p1").project,
                e2b_snapshot_id: "e2bsnap0".into(),
                source_sandbox_id: "sb1".into(),
                description: "seeded".into(),
                kind: SnapshotKind::Manual,
                pinned: false,
                status: SnapshotStatus::Ready,
                created_at: at(0),
                size_bytes: None,
                file_count: None,
                held_until: None,
            };
            e2b.snapshots
                .insert("e2bsnap0".into(), ("sb1".into(), "sandman-snap1".into()));
            table.snapshots.insert(
                ("p1".into(), "snap1".into()),
                SnapshotRow {
                    snapshot,
                    held_until: None,
                    fork_holds: 0,
                    fork_held_until: None,
                },
            );
        }
        table.live = table
            .projects
            .values()
            .filter(|r| r.state().is_some_and(sandman_protocol::domain::is_live))
            .count() as i64;
        State {
            clock: 0,
            table,
            e2b,
            budget_reached: false,
            slots: self
                .slots
                .iter()
                .map(|slot| Slot {
                    role: slot.role,
                    ops_left: slot.ops,
                    op: None,
                })
                .collect(),
            left: self.budget.clone(),
            seq: 0,
            facts: Facts::default(),
            judged: Vec::new(),
            ended: false,
        }
    }
}

/// `project` already has sandbox `sandbox` in `state`, in the table and in E2B alike.
fn settle(table: &mut Table, e2b: &mut E2bWorld, project: &str, sandbox: &str, state: SessionState) {
    let session_id = format!("{project}-s0");
    let record = table.projects.get_mut(project).expect("seeded project");
    record.version += 2;
    record.session = Some(Session {
        session_id: session_id.clone(),
        sandbox: Some(SandboxRef {
            sandbox_id: sandbox.into(),
            domain: Some("e2b.model".into()),
            access_token: Some(Secret::new(format!("token-{sandbox}"))),
        }),
        state,
        state_since: at(0),
        lease_until: None,
        last_active_at: at(0),
        idle_at: (state == SessionState::Running).then(|| at(0) + IDLE),
        running_since: (state == SessionState::Running).then(|| at(0)),
        busy_since: None,
        busy_until: None,
        timeout_at: Some(at(300)),
        paused_at: (state == SessionState::Paused).then(|| at(0)),
        last_actor: Actor::User,
        last_cause: "seeded".into(),
        last_error: None,
        failures: 0,
        restored_from: None,
        replaces_session: None,
        retiring: None,
        last_event_at: None,
        usage: Usage::default(),
        settings_version: None,
    });
    e2b.sandboxes.insert(
        sandbox.into(),
        Sbx {
            state: match state {
                SessionState::Running => SbxState::Running,
                _ => SbxState::Paused,
            },
            metadata: session_metadata(project, &session_id),
            template: "base".into(),
            started_at: 0,
            execution: 1,
            run_since: 0,
        },
    );
}

const NO_FAULTS: Budget = Budget {
    faults: 0,
    cuts: 0,
    ticks: 0,
    auto_pauses: 0,
    drops: 0,
    duplicates: 0,
    budget_reached: 0,
};

/// Every scenario: the actors each one sets against each other, and the faults it allows.
fn scenarios() -> Vec<Config> {
    use Role::*;
    vec![
        Config::scenario(
            "open-vs-delete",
            &["fresh", "settled"],
            vec![
                api(1, &["open p1"]),
                api(1, &["delete p1"]),
                actor(Webhook, 2),
                actor(Reconciler, 1),
            ],
            Budget {
                faults: 1,
                cuts: 1,
                ..NO_FAULTS
            },
        ),
        Config::scenario(
            "e2b-pauses-on-its-own",
            &["settled"],
            vec![
                api(2, &["open p1", "heartbeat p1", "resume p1"]),
                actor(Webhook, 2),
                actor(IdleEnforcer, 1),
            ],
            Budget {
                auto_pauses: 1,
                drops: 1,
                ticks: 1,
                ..NO_FAULTS
            },
        ),
        Config::scenario(
            "ambiguous-calls",
            &["fresh", "settled"],
            vec![
                api(1, &["open p1", "pause p1", "kill p1"]),
                actor(Webhook, 2),
                actor(Reconciler, 2),
            ],
            Budget {
                faults: 1,
                cuts: 1,
                ticks: 2,
                drops: 1,
                ..NO_FAULTS
            },
        ),
        Config::scenario(
            "quota-and-budget",
            &["fresh", "settled"],
            vec![
                api(1, &["open p1", "restore p1", "heartbeat p2"]),
                api(1, &["open p2", "resume p2"]),
            ],
            Budget {
                budget_reached: 1,
                ..NO_FAULTS
            },
        ),
        Config::scenario(
            "idle-vs-activity",
            &["settled"],
            vec![
                api(2, &["heartbeat p1", "open p1"]),
                actor(IdleEnforcer, 1),
                actor(Webhook, 1),
            ],
            Budget {
                ticks: 2,
                faults: 1,
                cuts: 1,
                ..NO_FAULTS
            },
        ),
        Config::scenario(
            "restore",
            &["settled"],
            vec![
                api(1, &["restore p1"]),
                api(1, &["open p1", "kill p1"]),
                actor(Webhook, 2),
                actor(Reconciler, 1),
            ],
            Budget {
                faults: 1,
                cuts: 1,
                ticks: 1,
                ..NO_FAULTS
            },
        ),
        Config::scenario(
            "snapshots-and-pruner",
            &["settled"],
            vec![
                api(1, &["restore p1", "kill p1", "delete p1"]),
                actor(Pruner, 1),
                actor(Webhook, 1),
            ],
            Budget {
                faults: 1,
                cuts: 1,
                ticks: 1,
                ..NO_FAULTS
            },
        ),
        Config::scenario(
            "live-fork",
            &["settled"],
            vec![
                api(1, &["fork p1"]),
                api(1, &["delete p1", "pause p1"]),
                actor(Webhook, 2),
                actor(Reconciler, 1),
            ],
            Budget {
                faults: 1,
                cuts: 1,
                ticks: 1,
                ..NO_FAULTS
            },
        ),
    ]
}
