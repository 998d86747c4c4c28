//! `sandman-local teardown --base-url URL`: before `sam delete`, removes every E2B webhook
//! registration that points at the stack's webhook URL (the root URL and every `/accounts/...`
//! path) from every E2B account the deployment knows: the default key, the teams' keys configured
//! in the secret, and the keys teams registered through the API (sealed in the table, opened with
//! the stack's KMS key). Then it says what it leaves: the sandboxes and snapshots in those E2B
//! accounts, and what outlives `sam delete` in AWS.

use sandman::e2b::{E2b, SandboxFilter, SandboxState};
use sandman::sandbox_metadata;

/// One E2B account and what the teardown did there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleared {
    pub account: String,
    pub deleted: Vec<String>,
    /// Running or paused sandboxes that carry Sandman's metadata, left for their timeout.
    pub sandboxes_left: usize,
}

/// Deletes every webhook of every account whose URL starts with `base_url`.
pub async fn clear(accounts: &[(String, E2b)], base_url: &str) -> Result<Vec<Cleared>, String> {
    let base = base_url.trim_end_matches('/');
    let mut cleared = Vec::new();
    let mut seen: Vec<&E2b> = Vec::new();
    for (account, e2b) in accounts {
        if seen.iter().any(|other| other.same_account(e2b)) {
            continue;
        }
        seen.push(e2b);
        let webhooks = e2b.list_webhooks().await.map_err(|e| format!("{account}: {e}"))?;
        let mut deleted = Vec::new();
        for webhook in webhooks
            .iter()
            .filter(|w| w.url.trim_end_matches('/').starts_with(base))
        {
            e2b.delete_webhook(&webhook.id)
                .await
                .map_err(|e| format!("{account}: deleting webhook {}: {e}", webhook.id))?;
            deleted.push(webhook.url.clone());
        }
        let filter = SandboxFilter {
            states: vec![SandboxState::Running, SandboxState::Paused],
            metadata: Default::default(),
        };
        let sandboxes_left = e2b
            .list_sandboxes(&filter)
            .await
            .map_err(|e| format!("{account}: listing sandboxes: {e}"))?
            .iter()
            .filter(|s| s.metadata.contains_key(sandbox_metadata::TEAM))
            .count();
        cleared.push(Cleared {
            account: account.clone(),
            deleted,
            sandboxes_left,
        });
    }
    Ok(cleared)
}

/// What `sam delete` leaves behind, and how to remove it (docs/deploy.md, "Remove Sandman").
pub const LEFT_IN_AWS: &str = "\
Not removed by this command or by `sam delete` (docs/deploy.md, \"Remove Sandman\"):
  - the DynamoDB table (retained, deletion protection on): `aws dynamodb update-table --table-name TABLE --no-deletion-protection-enabled`, then `aws dynamodb delete-table --table-name TABLE`
  - the KMS key TeamKeysKey (retained; it opens the teams' keys sealed in the table): `aws kms schedule-key-deletion --key-id KEY_ARN --pending-window-in-days 7` after the table is gone; it stays \"pending deletion\" (and billed) for those 7 days
  - the secrets: deleted with a 30-day recovery window
  - SAM's artifact bucket (stack aws-sam-cli-managed-default), shared by every SAM app of the region";
