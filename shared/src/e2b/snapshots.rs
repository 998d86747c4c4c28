//! Persistent snapshots: taken from a sandbox, listed per sandbox, deleted as templates.

use reqwest::Method;
use serde::Serialize;

use super::accounts::E2b;
use super::request::Request;
use sandman_protocol::e2b::E2bError;
use sandman_protocol::e2b::SnapshotInfo;

#[derive(Serialize)]
struct SnapshotRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

impl E2b {
    /// Not idempotent (each call takes a new snapshot): retried only when E2B refused it (429).
    pub async fn create_snapshot(&self, sandbox_id: &str, name: Option<&str>) -> Result<SnapshotInfo, E2bError> {
        const ROUTE: &str = "POST /sandboxes/{id}/snapshots";
        let request = Request::new(Method::POST, ROUTE, &["sandboxes", sandbox_id, "snapshots"])
            .with_json(&SnapshotRequest { name })?
            .for_sandbox(sandbox_id)
            .not_idempotent();
        self.send(request).await?.json(ROUTE)
    }

    /// Every snapshot taken from `sandbox_id`, across all pages.
    pub async fn list_snapshots(&self, sandbox_id: &str) -> Result<Vec<SnapshotInfo>, E2bError> {
        const ROUTE: &str = "GET /snapshots";
        self.all_pages(|| {
            Request::new(Method::GET, ROUTE, &["snapshots"])
                .with_query("sandboxID", sandbox_id)
                .for_sandbox(sandbox_id)
        })
        .await
    }

    /// Whether this key's E2B team holds the snapshot: one page of at most one snapshot, filtered
    /// by its id (E2B's `name` filter takes a name or an id, and is scoped to the key's team).
    pub async fn has_snapshot(&self, snapshot_id: &str) -> Result<bool, E2bError> {
        const ROUTE: &str = "GET /snapshots";
        let request = Request::new(Method::GET, ROUTE, &["snapshots"])
            .with_query("name", snapshot_id)
            .with_query("limit", "1");
        let found: Vec<SnapshotInfo> = self.send(request).await?.json(ROUTE)?;
        Ok(!found.is_empty())
    }

    /// A snapshot is a template: deleting it is `DELETE /templates/{snapshotID}`.
    pub async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), E2bError> {
        const ROUTE: &str = "DELETE /templates/{id}";
        let request = Request::new(Method::DELETE, ROUTE, &["templates", snapshot_id]);
        self.send(request).await.map(drop)
    }
}
