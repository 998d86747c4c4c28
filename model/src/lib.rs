//! A model checker for Sandman's lifecycle protocol. Each actor runs the protocol's own operations
//! (`sandman_protocol::ops`, the very functions the Lambdas call); every step is one effect of one
//! operation, and the model explores every outcome E2B could give it (success, refusal, a 5xx
//! before or after doing the work), every order in which actors and E2B's webhooks interleave, and
//! a Lambda cut between any two steps, then judges the invariants of `STATE_MACHINE.md`.
//!
//! # Layout
//! - `config.rs`: what is explored (projects, actors, faults, depth): `ci` and `full`.
//! - `state.rs`: one state. `world.rs`: the table and E2B, and what each effect does to them.
//! - `effect.rs`: effects and outcomes as data. `replay.rs`: the port that replays an operation.
//! - `ops.rs`: the operations an actor may run. `model.rs`: actions, steps, the finale.
//! - `invariants.rs`: what is judged, with counts. `trace.rs`: a violation in words.

pub mod config;
pub mod effect;
pub mod invariants;
pub mod model;
pub mod ops;
pub mod replay;
pub mod state;
pub mod trace;
pub mod world;
