//! Who within a team may do what: the one place the API asks. A team's tokens are its members';
//! a token whose role claim (`JWT_ROLE_CLAIM`, default `roles`) holds `JWT_ADMIN_ROLE` is a team
//! admin's, and without a configured role nobody is an admin (fail closed).
//!
//! Members may do everything a team's app does day to day: register and change projects, open,
//! pause, resume, kill, snapshot, restore, fork and delete them, read usage and deliveries. Only
//! an admin may do what reaches outside the team's sandboxes or changes what the team pays:
//! - `ManageTeam`: register or forget the team's E2B key, set or remove its budget;
//! - `ManageEndpoints`: register or remove an outbound webhook endpoint, which receives the
//!   team's whole lifecycle stream at a URL of the caller's choosing;
//! - `PublicSandboxes`: a project with `publicTraffic: true`, whose sandbox URLs answer anyone.
//!
//! Per-project roles (issue #28) belong here too: an `Action` names what is done, and `authorize`
//! is the only place that decides.

use crate::Sandman;
use crate::auth::Caller;
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ManageTeam,
    ManageEndpoints,
    PublicSandboxes,
}

impl Action {
    fn describe(self) -> &'static str {
        match self {
            Action::ManageTeam => "change the team's E2B key or budget",
            Action::ManageEndpoints => "register or remove webhook endpoints",
            Action::PublicSandboxes => "make a project's sandbox public (publicTraffic)",
        }
    }
}

impl Sandman {
    /// Whether `caller` may do `action`: `Forbidden`, saying which role it needs, if not.
    pub fn authorize(&self, caller: &Caller, action: Action) -> Result<(), Error> {
        if caller.admin {
            return Ok(());
        }
        let admin = &self.config.auth.admin;
        let message = match &admin.role {
            Some(role) => format!(
                "only a team admin may {}: the token's {} claim must hold {role:?}",
                action.describe(),
                admin.claim
            ),
            None => format!(
                "only a team admin may {}, and no admin role is configured on this deployment \
                 (JWT_ADMIN_ROLE), so nobody may",
                action.describe()
            ),
        };
        Err(Error::Forbidden(message))
    }
}
