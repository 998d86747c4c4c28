//! A project's environment variables and secrets (issue #29), and its team's, which every project
//! of the team inherits (a project's own name wins). Design and guarantees: `docs/SECRETS.md`.
//!
//! - **Env vars** are plain settings: editors read them back. E2B takes them only when it creates a
//!   sandbox (a restore is a create from a snapshot; a resume is a connect and takes none), so a
//!   change reaches a running or paused sandbox only at its next create or restore: until then
//!   its status says `restartRequired`.
//! - **Secrets** are write-only: a listing shows a name, the last four characters, when and by
//!   whom. Stored sealed (`team_keys/seal.rs`, bound to team, scope and name), opened only in memory
//!   and only by the API, to hand a value to E2B. Where the team's E2B account has E2B's secrets
//!   API, the value goes there (on every write, so a rotation reaches running sandboxes at once)
//!   and a sandbox gets a header rule with the marker `${e2b.secrets.NAME}` for the secret's hosts:
//!   the value never enters the sandbox. Where it has not, the secret goes as an env var.
//!
//! # Layout
//! - `rules.rs`: names, limits and specs, each refusal naming its field.
//! - `merge.rs`: pure: a secret's name in E2B, whether a change needs a restart, what a project
//!   inherits.
//! - `write.rs`: the API's operations: read and set env vars, list, put and delete secrets.
//! - `launch.rs`: what a create is given (`Port::launch_settings`), secrets synced to E2B first.
//! - `lifecycle.rs`: forks (names, never values) and deleted projects.
//!
//! Stored by `store/settings.rs`.

mod launch;
mod lifecycle;
mod merge;
mod rules;
mod write;

pub use merge::{e2b_secret_name, placeholder};
pub use rules::{
    MAX_HOSTS, MAX_SECRET_BYTES, MAX_SECRETS, MAX_SECRETS_TOTAL_BYTES, MAX_VAR_BYTES, MAX_VARS, MAX_VARS_TOTAL_BYTES,
    SECRET_NAME_PATTERN, SecretSpec, check_secret_name,
};
pub use write::{EnvView, SecretChange, SecretView, SecretsView};

pub use crate::store::{Delivery, Scope};
