//! The fault table and the actor that draws from it. Each entry turns one kind of misbehaviour on
//! for a burst; every step the previous bursts end and new ones begin. A new fault (say the
//! emulator's "applied, then failed") is one more entry here. Storms alternate with calm stretches
//! (no fault but the 4% of invocations cut at their deadline), so that the progress floors have
//! calm time to be judged in; every fault's span goes to the fleet's timeline.

use std::time::Duration;

use e2b_emulator::{Fault, Route, WebhookFaults};

use crate::dynamo_faults::DynamoFault;
use crate::fleet::{ABANDON_PERCENT, E2B_CALL_DEADLINE, Fleet};
use crate::ledger::Ledger;
use crate::stalls::{Step, Stretch};

/// The E2B routes Sandman calls, all of which may fail.
const ROUTES: [Route; 13] = [
    Route::CreateSandbox,
    Route::ForkSandbox,
    Route::BatchMetrics,
    Route::GetSandbox,
    Route::ListSandboxes,
    Route::PauseSandbox,
    Route::ConnectSandbox,
    Route::ResumeSandbox,
    Route::SetTimeout,
    Route::KillSandbox,
    Route::CreateSnapshot,
    Route::ListSnapshots,
    Route::DeleteSnapshot,
];

type Inject = fn(&Fleet, &mut fastrand::Rng) -> String;

pub struct FaultEntry {
    pub name: &'static str,
    pub weight: u32,
    pub inject: Inject,
}

fn route(rng: &mut fastrand::Rng) -> Route {
    ROUTES[rng.usize(0..ROUTES.len())]
}

pub const FAULT_TABLE: &[FaultEntry] = &[
    FaultEntry {
        name: "e2b.5xx-before-applied",
        weight: 6,
        inject: |fleet, rng| {
            let (route, status) = (route(rng), [500, 502, 503][rng.usize(0..3)]);
            let fault = Fault {
                fail_next: rng.u32(1..4),
                error_status: status,
                ..Fault::default()
            };
            fleet.emulator.set_fault(route, fault);
            format!("{route:?} {status}")
        },
    },
    FaultEntry {
        name: "e2b.applied-then-5xx",
        weight: 5,
        inject: |fleet, rng| {
            let (route, status) = (route(rng), [500, 502, 503][rng.usize(0..3)]);
            let fault = Fault {
                applied_then_fail_next: rng.u32(1..4),
                error_status: status,
                ..Fault::default()
            };
            fleet.emulator.set_fault(route, fault);
            format!("{route:?} {status}")
        },
    },
    FaultEntry {
        name: "e2b.applied-then-timeout",
        weight: 2,
        inject: |fleet, rng| {
            let route = route(rng);
            let fault = Fault {
                applied_then_hang_next: rng.u32(1..3),
                hang_for: E2B_CALL_DEADLINE + Duration::from_millis(500),
                ..Fault::default()
            };
            fleet.emulator.set_fault(route, fault);
            format!("{route:?}")
        },
    },
    FaultEntry {
        name: "e2b.latency-past-deadline",
        weight: 1,
        inject: |fleet, rng| {
            let route = route(rng);
            let fault = Fault {
                latency: E2B_CALL_DEADLINE + Duration::from_millis(500),
                ..Fault::default()
            };
            fleet.emulator.set_fault(route, fault);
            format!("{route:?}")
        },
    },
    FaultEntry {
        name: "e2b.applied-late",
        weight: 3,
        inject: |fleet, rng| {
            // Taken in, then done only after the caller's deadline: a create that lands after the
            // caller rolled back, a pause after it gave up.
            let route = [
                Route::CreateSandbox,
                Route::ConnectSandbox,
                Route::PauseSandbox,
                Route::KillSandbox,
            ][rng.usize(0..4)];
            let route = if rng.u32(0..3) == 0 { self::route(rng) } else { route };
            let fault = Fault {
                apply_late_next: rng.u32(1..3),
                apply_after: E2B_CALL_DEADLINE + Duration::from_millis(rng.u64(100..1500)),
                ..Fault::default()
            };
            fleet.emulator.set_fault(route, fault);
            format!("{route:?}")
        },
    },
    FaultEntry {
        name: "e2b.fork-error",
        weight: 2,
        inject: |fleet, rng| {
            let status = [500, 503, 409][rng.usize(0..3)];
            let fault = Fault {
                fork_error_next: rng.u32(1..4),
                error_status: status,
                ..Fault::default()
            };
            fleet.emulator.set_fault(Route::ForkSandbox, fault);
            format!("ForkSandbox {status}")
        },
    },
    FaultEntry {
        name: "e2b.error-rate",
        weight: 3,
        inject: |fleet, rng| {
            let route = route(rng);
            let fault = Fault {
                error_rate: 0.3,
                error_status: 503,
                ..Fault::default()
            };
            fleet.emulator.set_fault(route, fault);
            format!("{route:?}")
        },
    },
    FaultEntry {
        name: "e2b.429-burst",
        weight: 3,
        inject: |fleet, rng| {
            let route = route(rng);
            let fault = Fault {
                rate_limit_burst: rng.u32(1..4),
                ..Fault::default()
            };
            fleet.emulator.set_fault(route, fault);
            format!("{route:?}")
        },
    },
    FaultEntry {
        name: "e2b.latency",
        weight: 3,
        inject: |fleet, rng| {
            let route = route(rng);
            let fault = Fault {
                latency: Duration::from_millis(rng.u64(100..800)),
                ..Fault::default()
            };
            fleet.emulator.set_fault(route, fault);
            format!("{route:?}")
        },
    },
    FaultEntry {
        name: "e2b.list-fails",
        weight: 2,
        inject: |fleet, _| {
            let fault = Fault {
                fail_next: 3,
                error_status: 503,
                ..Fault::default()
            };
            fleet.emulator.set_fault(Route::ListSandboxes, fault);
            "ListSandboxes".into()
        },
    },
    FaultEntry {
        name: "e2b.list-fails-one-account",
        weight: 2,
        inject: |fleet, rng| {
            let account = rng.usize(0..fleet.accounts.len());
            let (fault, how) = if rng.bool() {
                let fault = Fault {
                    error_rate: 1.0,
                    error_status: [500, 502, 503][rng.usize(0..3)],
                    ..Fault::default()
                };
                let how = fault.error_status.to_string();
                (fault, how)
            } else {
                let fault = Fault {
                    latency: E2B_CALL_DEADLINE + Duration::from_millis(500),
                    ..Fault::default()
                };
                (fault, "timeout".to_owned())
            };
            let steps_left = rng.u32(3..12);
            let stretch = Stretch {
                account,
                fault: fault.clone(),
                steps_left,
            };
            if !fleet.watch.begin_stretch(stretch) {
                return "(one is failing already)".into();
            }
            let team = fleet.accounts[account].team.as_str();
            fleet.emulator.set_team_fault(team, Route::ListSandboxes, fault);
            format!("{team} {how} for {steps_left} steps")
        },
    },
    FaultEntry {
        name: "webhook.drop",
        weight: 3,
        inject: |fleet, rng| {
            let n = rng.u32(1..6);
            fleet.emulator.set_webhook_faults(WebhookFaults {
                drop_next: n,
                ..WebhookFaults::default()
            });
            format!("{n}")
        },
    },
    FaultEntry {
        name: "webhook.duplicate",
        weight: 2,
        inject: |fleet, _| {
            fleet.emulator.set_webhook_faults(WebhookFaults {
                duplicate: true,
                ..WebhookFaults::default()
            });
            String::new()
        },
    },
    FaultEntry {
        name: "webhook.reorder",
        weight: 2,
        inject: |fleet, rng| {
            fleet.emulator.set_webhook_faults(WebhookFaults {
                reorder: true,
                delay: Duration::from_millis(rng.u64(100..500)),
                ..WebhookFaults::default()
            });
            String::new()
        },
    },
    FaultEntry {
        name: "webhook.concurrent",
        weight: 4,
        inject: |fleet, rng| {
            let jitter = Duration::from_millis(rng.u64(50..400));
            fleet.emulator.set_webhook_faults(WebhookFaults {
                concurrent: true,
                jitter,
                drop_next: rng.u32(0..3),
                ..WebhookFaults::default()
            });
            format!("{}ms", jitter.as_millis())
        },
    },
    FaultEntry {
        name: "clock.e2b-behind",
        weight: 2,
        inject: |fleet, rng| {
            let ms = rng.i64(5_000..=MAX_SKEW_MS);
            fleet.set_skew(ms);
            format!("{}s", ms / 1000)
        },
    },
    FaultEntry {
        name: "clock.e2b-ahead",
        weight: 2,
        inject: |fleet, rng| {
            let ms = rng.i64(5_000..=MAX_SKEW_MS);
            fleet.set_skew(-ms);
            format!("{}s", ms / 1000)
        },
    },
    FaultEntry {
        name: "webhook.delay",
        weight: 2,
        inject: |fleet, rng| {
            fleet.emulator.set_webhook_faults(WebhookFaults {
                delay: Duration::from_millis(rng.u64(200..1500)),
                ..WebhookFaults::default()
            });
            String::new()
        },
    },
    FaultEntry {
        name: "dynamodb.throttle",
        weight: 3,
        inject: |fleet, _| {
            fleet.chaos.set(DynamoFault::Throttle, 30);
            String::new()
        },
    },
    FaultEntry {
        name: "dynamodb.transaction-conflict",
        weight: 3,
        inject: |fleet, _| {
            fleet.chaos.set(DynamoFault::TransactionConflict, 150);
            String::new()
        },
    },
    FaultEntry {
        name: "dynamodb.unreachable",
        weight: 1,
        inject: |fleet, rng| {
            let length = Duration::from_millis(rng.u64(200..800));
            fleet.chaos.outage(length);
            fleet.timeline.for_length("dynamodb.unreachable", length);
            format!("{}ms", length.as_millis())
        },
    },
    FaultEntry {
        name: "dynamodb.applied-then-500",
        weight: 2,
        inject: |fleet, _| {
            fleet.chaos.set(DynamoFault::AppliedThen500, 40);
            String::new()
        },
    },
];

/// How far Sandman's clock and E2B's drift apart at most (under `decide`'s 30 s tolerance).
pub const MAX_SKEW_MS: i64 = 25_000;

/// Turns every fault off: what the run ends with before the quiescence checks.
pub fn all_off(fleet: &Fleet) {
    fleet.watch.end_stretch();
    end_bursts(fleet);
    fleet.timeline.end("");
}

/// Ends the bursts (a stretch of one account's failing lists goes on: see [`step`]).
fn end_bursts(fleet: &Fleet) {
    fleet.emulator.clear_faults();
    fleet.emulator.set_webhook_faults(WebhookFaults::default());
    fleet.chaos.off();
    fleet.set_skew(0);
    fleet.watch.calm();
    fleet.timeline.end_all_but(&[STRETCH, "dynamodb.restart"]);
}

const STRETCH: &str = "stretch";

/// Ends a stretch of one account's failing lists, if one is on.
fn end_stretch(fleet: &Fleet) {
    if let Some(Stretch { account, .. }) = fleet.watch.end_stretch() {
        let team = fleet.accounts[account].team.as_str();
        fleet.emulator.clear_team_fault(team, Route::ListSandboxes);
    }
    fleet.timeline.end(STRETCH);
}

/// Where the chaos actor is: a storm of bursts, or a calm stretch (no fault at all), for so many
/// more steps.
#[derive(Debug, Clone, Copy)]
pub enum Weather {
    Storm(u32),
    Calm(u32),
}

impl Weather {
    /// The weather of the next step; whether it just turned calm.
    pub fn next(self, rng: &mut fastrand::Rng) -> (Weather, bool) {
        match self {
            Weather::Storm(0) => (Weather::Calm(rng.u32(6..13)), true),
            Weather::Calm(0) => (Weather::Storm(rng.u32(4..11)), false),
            Weather::Storm(n) => (Weather::Storm(n - 1), false),
            Weather::Calm(n) => (Weather::Calm(n - 1), false),
        }
    }
}

/// A calm step: everything off (the first one ends the storm, stretch included).
pub fn calm(fleet: &Fleet, turned: bool) {
    if turned {
        end_stretch(fleet);
        end_bursts(fleet);
    }
}

/// Whether a burst may stop any account's listing (so reconcile ticks under it are not judged
/// by [`crate::stalls`]): a fault on every account's list calls, or any DynamoDB fault (the
/// registered keys are read from the table). E2B bursts name their route first.
fn disturbs_listing(name: &str, target: &str) -> bool {
    name.starts_with("dynamodb.") || (name != "e2b.list-fails-one-account" && target.starts_with("ListSandboxes"))
}

/// One chaos step: the last step's bursts end (mostly), one or two new ones begin; a stretch of
/// one account's failing lists goes on for its steps, whatever else ends.
pub fn step(fleet: &Fleet, rng: &mut fastrand::Rng, ledger: &Ledger, skip: &[String]) {
    let stretch = fleet.watch.step();
    if rng.bool() {
        end_bursts(fleet);
    }
    match stretch {
        Step::GoesOn(Stretch { account, fault, .. }) => {
            let team = fleet.accounts[account].team.as_str();
            fleet.emulator.set_team_fault(team, Route::ListSandboxes, fault);
        }
        Step::Ended(Stretch { account, .. }) => {
            let team = fleet.accounts[account].team.as_str();
            fleet.emulator.clear_team_fault(team, Route::ListSandboxes);
            fleet.timeline.end(STRETCH);
        }
        Step::None => {}
    }
    let table: Vec<&FaultEntry> = FAULT_TABLE
        .iter()
        .filter(|f| !skip.iter().any(|s| s == f.name))
        .collect();
    let total: u32 = table.iter().map(|f| f.weight).sum();
    if total == 0 {
        return;
    }
    for _ in 0..rng.usize(1..3) {
        let mut pick = rng.u32(0..total);
        let entry = table
            .iter()
            .find(|f| {
                if pick < f.weight {
                    true
                } else {
                    pick -= f.weight;
                    false
                }
            })
            .expect("the weights cover the pick");
        let target = (entry.inject)(fleet, rng);
        match entry.name {
            "e2b.list-fails-one-account" if !target.starts_with('(') => {
                fleet.timeline.begin(&format!("{STRETCH} {}", entry.name));
            }
            "dynamodb.unreachable" | "e2b.list-fails-one-account" => {}
            name => fleet.timeline.begin(name),
        }
        // Right after the fault is on: a tick that listed under it ends later still (it has the
        // table to correct), so it sees the count move and is not judged.
        if disturbs_listing(entry.name, &target) {
            fleet.watch.disturbed();
        }
        ledger.fault(format!("burst {} {target}", entry.name).trim_end());
    }
}

/// Runs `invocation` as Lambda would, sometimes cutting it at a random await (its deadline).
/// `None` when it was cut.
pub async fn invoke<T>(
    rng: &mut fastrand::Rng,
    ledger: &Ledger,
    what: &str,
    invocation: impl std::future::Future<Output = T>,
    abandonable: bool,
) -> Option<T> {
    if !abandonable || rng.u32(0..100) >= ABANDON_PERCENT {
        return Some(invocation.await);
    }
    let deadline = Duration::from_millis(rng.u64(1..250));
    match tokio::time::timeout(deadline, invocation).await {
        Ok(done) => Some(done),
        Err(_) => {
            ledger.fault(&format!("lambda.{what}-abandoned"));
            None
        }
    }
}
