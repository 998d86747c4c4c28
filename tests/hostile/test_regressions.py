"""Answers schemathesis once found wrong on this stack, kept as plain tests."""

from conftest import Api, mint, wait_running


def test_deleting_a_project_whose_snapshot_backs_its_running_sandbox(api_url, stored):
    """Was a 502: the snapshot could not be deleted while the sandbox restored from it ran."""
    c = Api(api_url, mint("team-c"))
    c.ok("PUT", "/v1/projects/gamma", {"templateId": "base", "idleTimeoutSeconds": 3600})
    c.ok("POST", "/v1/projects/gamma/sandbox")
    wait_running(c, "gamma")
    snapshot = c.ok("POST", "/v1/projects/gamma/snapshots", {})
    c.ok("DELETE", "/v1/projects/gamma/sandbox")
    restored = c.ok("POST", f"/v1/projects/gamma/snapshots/{snapshot['snapshotId']}/restore")
    assert restored["restoredFrom"] == snapshot["snapshotId"], restored
    sandbox = wait_running(c, "gamma")["sandboxId"]

    assert c.call("DELETE", "/v1/projects/gamma").status == 204
    assert c.call("GET", "/v1/projects/gamma").status == 404
    left = [item for item in stored.items() if "team-c" in item["pk"]["S"]]
    # Only the lifecycle log and the counted executions stay, until their TTL (`expiresAt`), the usage
    # counters, which the team's bill still counts, and the team's snapshot and live counts (now zero).
    zero = lambda item, sk, name: item["pk"]["S"] == "TEAM#team-c" and item["sk"]["S"] == sk and item.get(name, {}).get("N", "0") == "0"
    counter = lambda item: zero(item, "SNAPSHOTS", "snapshotCount") or zero(item, "LIVE", "live")
    expiring = lambda item: (item["sk"]["S"].startswith("EVENT#") or item["pk"]["S"].startswith("EXECUTION#")) and "expiresAt" in item
    kept = lambda item: expiring(item) or item["sk"]["S"].startswith("USAGE#") or counter(item)
    assert left and all(kept(item) for item in left), [item for item in left if not kept(item)]
    assert any(item["sk"]["S"].startswith("EVENT#") for item in left), left
    assert sandbox not in {s["sandboxID"] for account in stored.sandboxes() for s in account}
