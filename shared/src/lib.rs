//! Sandman's core. Functions wire these pieces; every rule lives here.

pub mod config;
pub mod domain;
pub mod e2b;
pub mod secrets;
pub mod store;
pub mod telemetry;
