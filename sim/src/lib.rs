//! `sandman-sim`: replays per-project activity traces on a virtual clock through the protocol's
//! own adaptive-idle and warm-up decisions (`sandman_protocol::adaptive`), the activity path's
//! heartbeat rule and the enforcer's two-minute tick, and reports per policy what a user and a
//! bill would see: cold resumes, running and paused minutes, E2B cost, heartbeat writes.
//!
//! - `trace`: a trace is per-project activity times. `synth`: the synthetic generator (stated
//!   distributions). `input`: the plain CSV and the Azure Functions 2019 readers.
//! - `policy`: the policies compared; `hybrid`: the hybrid-histogram policy (Shahrad et al.).
//! - `engine`: the virtual clock. `report`: the table.

pub mod engine;
pub mod hybrid;
pub mod input;
pub mod policy;
pub mod report;
pub mod synth;
pub mod trace;
