//! Sandman's core. Functions wire these pieces; every rule lives here.
pub mod e2b;
