//! A violation in words: each step's actor and action, then the table and E2B after it.

use std::fmt::Write;

use stateright::Model;

use crate::model::{Action, SandmanModel};
use crate::state::State;

pub fn describe(model: &SandmanModel, path: &[(State, Option<Action>)]) -> String {
    let mut out = String::new();
    for (i, (state, action)) in path.iter().enumerate() {
        if i == 0 {
            let _ = writeln!(out, "start:");
            world(&mut out, state);
        }
        let Some(action) = action else { continue };
        let Some(next) = model.next_state(state, action.clone()) else {
            continue;
        };
        let _ = writeln!(out, "step {}: {}", i + 1, step(state, action));
        world(&mut out, &next);
        for (invariant, held, detail) in next.judged.iter().filter(|(_, held, _)| !held) {
            let _ = writeln!(out, "    VIOLATED {} ({held}): {detail}", invariant.name());
        }
    }
    out
}

fn step(state: &State, action: &Action) -> String {
    match action {
        Action::Start(slot, op) => format!("actor {slot} ({:?}) starts `{op}`", state.slots[*slot].role),
        Action::Step(slot, fault) => {
            let flight = state.slots[*slot].op.as_ref().expect("in flight");
            format!(
                "actor {slot} ({:?}, `{}`): {} -> {fault:?}",
                state.slots[*slot].role,
                flight.op,
                effect(&flight.asks)
            )
        }
        Action::Cut(slot) => format!("actor {slot}'s Lambda is cut"),
        Action::Tick => "time passes one claim lease".into(),
        Action::AutoPause(id) => format!("E2B pauses {id} on its own (timeout)"),
        Action::Drop(id) => format!("webhook event {id} is lost"),
        Action::BudgetReached => "the team's budget is reached".into(),
        Action::Finale => "faults stop; every lease lapses; one reconcile runs".into(),
    }
}

fn effect(effect: &crate::effect::Effect) -> String {
    use crate::effect::Effect;
    match effect {
        Effect::Write(w) => format!(
            "write {} {:?} --{:?}--> (v{})",
            w.key.project, w.from, w.event, w.expected_version
        ),
        other => {
            let text = format!("{other:?}");
            text.chars().take(120).collect()
        }
    }
}

fn world(out: &mut String, state: &State) {
    let _ = write!(out, "    t={}s table:", state.clock);
    for (project, record) in &state.table.projects {
        let _ = write!(
            out,
            " {project}={:?}@{} v{}",
            record.state(),
            record.sandbox_id().unwrap_or("-"),
            record.version
        );
    }
    let _ = write!(out, " | e2b:");
    for (id, sandbox) in &state.e2b.sandboxes {
        let _ = write!(out, " {id}={:?}", sandbox.state);
    }
    let _ = writeln!(out, " | events queued: {}", state.e2b.events.len());
}
