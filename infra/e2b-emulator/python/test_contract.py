"""Every emulated route, with each answer validated against E2B's OpenAPI contract."""

import pytest

from openapi_check import Contract, load_spec

# Statuses E2B.md documents beyond the spec (all with E2B's Error body).
SNAPSHOT_EXTRAS = (409,)  # snapshot of a paused sandbox
DELETE_TEMPLATE_EXTRAS = (400, 404)  # in use by a running sandbox; unknown snapshot
TIMEOUT_EXTRAS = (400, 409)  # timeout over the plan cap; sandbox mid-pause
REFRESH_EXTRAS = (400,)  # duration out of 0..3600


@pytest.fixture(scope="module")
def api_contract():
    return Contract(load_spec("E2B_OPENAPI_SPEC", "e2b-openapi.yml"))


@pytest.fixture(scope="module")
def argus_contract():
    return Contract(load_spec("E2B_ARGUS_OPENAPI_SPEC", "e2b-argus-openapi.yml"))


@pytest.fixture
def client(fresh):
    with fresh.client() as client:
        yield client


def create(client, contract, path="/v2/sandboxes", **fields):
    body = {"templateID": "base", "timeout": 300, **fields}
    response = client.post(path, json=body)
    # /v2/sandboxes is the SDKs' create; its contract is the same as /sandboxes.
    created = contract.check("post", "/sandboxes", response)
    assert response.status_code == 201
    return created["sandboxID"]


def test_create_on_both_paths_and_bad_request(client, api_contract):
    create(client, api_contract, path="/sandboxes", metadata={"k": "v"}, envVars={"A": "1"})
    create(client, api_contract, path="/v2/sandboxes", autoPause=True, autoResume={"enabled": True})
    missing = client.post("/sandboxes", json={"timeout": 10})
    api_contract.check("post", "/sandboxes", missing)
    assert missing.status_code == 400


def test_unauthenticated_calls_get_401(fresh, api_contract):
    with fresh.client(key="e2b_wrong") as stranger:
        response = stranger.get("/v2/sandboxes")
    api_contract.check("get", "/v2/sandboxes", response)
    assert response.status_code == 401


def test_get_sandbox_detail_and_404(client, api_contract):
    sandbox_id = create(client, api_contract, metadata={"project": "p"})
    detail = api_contract.check("get", "/sandboxes/{sandboxID}", client.get(f"/sandboxes/{sandbox_id}"))
    assert detail["state"] == "running"
    assert detail["metadata"] == {"project": "p"}
    missing = client.get("/sandboxes/unknown0000000000000")
    api_contract.check("get", "/sandboxes/{sandboxID}", missing)
    assert missing.status_code == 404


def test_list_v2_paginates_and_legacy_list(client, api_contract):
    for _ in range(3):
        create(client, api_contract, metadata={"owner": "me"})
    first = client.get("/v2/sandboxes", params={"limit": 2, "metadata": "owner=me", "state": "running,paused"})
    page = api_contract.check("get", "/v2/sandboxes", first)
    assert len(page) == 2
    token = first.headers["x-next-token"]
    second = client.get("/v2/sandboxes", params={"limit": 2, "nextToken": token})
    assert len(api_contract.check("get", "/v2/sandboxes", second)) == 1
    assert "x-next-token" not in second.headers
    bad = client.get("/v2/sandboxes", params={"limit": 0})
    api_contract.check("get", "/v2/sandboxes", bad)
    assert bad.status_code == 400
    legacy = api_contract.check("get", "/sandboxes", client.get("/sandboxes"))
    assert len(legacy) == 3


def test_pause_then_409_and_404(client, api_contract):
    sandbox_id = create(client, api_contract)
    path = "/sandboxes/{sandboxID}/pause"
    assert api_contract.check("post", path, client.post(f"/sandboxes/{sandbox_id}/pause")) is None
    again = client.post(f"/sandboxes/{sandbox_id}/pause", json={"memory": True})
    api_contract.check("post", path, again)
    assert again.status_code == 409
    missing = client.post("/sandboxes/unknown0000000000000/pause")
    api_contract.check("post", path, missing)
    assert missing.status_code == 404


def test_fork_201_with_one_result_per_fork_then_409_and_404(client, api_contract):
    sandbox_id = create(client, api_contract, metadata={"owner": "source"})
    path = "/sandboxes/{sandboxID}/fork"
    forked = client.post(f"/sandboxes/{sandbox_id}/fork", json={"timeout": 60, "count": 2})
    results = api_contract.check("post", path, forked)
    assert forked.status_code == 201
    assert len(results) == 2
    for result in results:
        fork_id = result["sandbox"]["sandboxID"]
        assert fork_id != sandbox_id
        detail = client.get(f"/sandboxes/{fork_id}")
        assert detail.json()["metadata"] == {"owner": "source"}, "the source's metadata"
    assert client.get(f"/sandboxes/{sandbox_id}").json()["state"] == "running"
    client.post(f"/sandboxes/{sandbox_id}/pause")
    paused = client.post(f"/sandboxes/{sandbox_id}/fork", json={})
    api_contract.check("post", path, paused)
    assert paused.status_code == 409
    missing = client.post("/sandboxes/unknown0000000000000/fork", json={})
    api_contract.check("post", path, missing)
    assert missing.status_code == 404


def test_connect_v1_and_v2_and_legacy_resume(client, api_contract):
    sandbox_id = create(client, api_contract)
    path = "/sandboxes/{sandboxID}/connect"
    running = client.post(f"/sandboxes/{sandbox_id}/connect", json={"timeout": 60})
    api_contract.check("post", path, running)
    assert running.status_code == 200
    client.post(f"/sandboxes/{sandbox_id}/pause")
    resumed = client.post(f"/v2/sandboxes/{sandbox_id}/connect", json={"timeout": 60})
    api_contract.check("post", path, resumed)
    assert resumed.status_code == 201

    resume_path = "/sandboxes/{sandboxID}/resume"
    conflict = client.post(f"/sandboxes/{sandbox_id}/resume", json={"timeout": 60})
    api_contract.check("post", resume_path, conflict)
    assert conflict.status_code == 409
    client.post(f"/sandboxes/{sandbox_id}/pause")
    legacy = client.post(f"/sandboxes/{sandbox_id}/resume", json={"timeout": 60})
    api_contract.check("post", resume_path, legacy)
    assert legacy.status_code == 201


def test_timeout_and_refresh(client, api_contract):
    sandbox_id = create(client, api_contract)
    timeout_path = "/sandboxes/{sandboxID}/timeout"
    ok = client.post(f"/sandboxes/{sandbox_id}/timeout", json={"timeout": 30})
    api_contract.check("post", timeout_path, ok, TIMEOUT_EXTRAS)
    assert ok.status_code == 204
    missing = client.post("/sandboxes/unknown0000000000000/timeout", json={"timeout": 30})
    api_contract.check("post", timeout_path, missing, TIMEOUT_EXTRAS)
    assert missing.status_code == 404

    refresh_path = "/sandboxes/{sandboxID}/refreshes"
    ok = client.post(f"/sandboxes/{sandbox_id}/refreshes", json={"duration": 60})
    api_contract.check("post", refresh_path, ok, REFRESH_EXTRAS)
    assert ok.status_code == 204
    missing = client.post("/sandboxes/unknown0000000000000/refreshes", json={"duration": 60})
    api_contract.check("post", refresh_path, missing, REFRESH_EXTRAS)
    assert missing.status_code == 404


def test_metrics(fresh, client, api_contract):
    sandbox_id = create(client, api_contract)
    fresh.advance(30)
    response = client.get(f"/sandboxes/{sandbox_id}/metrics")
    metrics = api_contract.check("get", "/sandboxes/{sandboxID}/metrics", response)
    assert len(metrics) >= 1
    bad = client.get(f"/sandboxes/{sandbox_id}/metrics", params={"start": 10, "end": 5})
    api_contract.check("get", "/sandboxes/{sandboxID}/metrics", bad)
    assert bad.status_code == 400


def test_snapshots_create_list_delete(client, api_contract):
    source = create(client, api_contract)
    create_path = "/sandboxes/{sandboxID}/snapshots"
    taken = client.post(f"/sandboxes/{source}/snapshots", json={})
    snapshot = api_contract.check("post", create_path, taken, SNAPSHOT_EXTRAS)
    assert taken.status_code == 201
    named = client.post(f"/sandboxes/{source}/snapshots", json={"name": "named-one"})
    api_contract.check("post", create_path, named, SNAPSHOT_EXTRAS)

    first = client.get("/snapshots", params={"sandboxID": source, "limit": 1})
    assert len(api_contract.check("get", "/snapshots", first)) == 1
    second = client.get("/snapshots", params={"sandboxID": source, "limit": 1, "nextToken": first.headers["x-next-token"]})
    assert len(api_contract.check("get", "/snapshots", second)) == 1
    assert "x-next-token" not in second.headers

    child = create(client, api_contract, templateID=snapshot["snapshotID"])
    delete_path = "/templates/{templateID}"
    in_use = client.delete(f"/templates/{snapshot['snapshotID']}")
    api_contract.check("delete", delete_path, in_use, DELETE_TEMPLATE_EXTRAS)
    assert in_use.status_code == 400
    client.delete(f"/sandboxes/{child}")
    deleted = client.delete(f"/templates/{snapshot['snapshotID']}")
    api_contract.check("delete", delete_path, deleted, DELETE_TEMPLATE_EXTRAS)
    assert deleted.status_code == 204
    gone = client.delete(f"/templates/{snapshot['snapshotID']}")
    api_contract.check("delete", delete_path, gone, DELETE_TEMPLATE_EXTRAS)
    assert gone.status_code == 404

    client.post(f"/sandboxes/{source}/pause")
    paused = client.post(f"/sandboxes/{source}/snapshots", json={})
    api_contract.check("post", create_path, paused, SNAPSHOT_EXTRAS)
    assert paused.status_code == 409


def test_kill_and_404_after(client, api_contract):
    sandbox_id = create(client, api_contract)
    path = "/sandboxes/{sandboxID}"
    killed = client.delete(f"/sandboxes/{sandbox_id}")
    api_contract.check("delete", path, killed)
    assert killed.status_code == 204
    again = client.delete(f"/sandboxes/{sandbox_id}")
    api_contract.check("delete", path, again)
    assert again.status_code == 404


def test_webhook_management(client, argus_contract):
    created = client.post(
        "/events/webhooks",
        json={
            "name": "hook",
            "url": "http://127.0.0.1:9/hook",
            "events": ["sandbox.lifecycle.killed"],
            "signatureSecret": "secret",
        },
    )
    webhook = argus_contract.check("post", "/events/webhooks", created)
    assert created.status_code == 201
    one_path = "/events/webhooks/{webhookID}"
    listed = argus_contract.check("get", "/events/webhooks", client.get("/events/webhooks"))
    assert [w["id"] for w in listed] == [webhook["id"]]
    argus_contract.check("get", one_path, client.get(f"/events/webhooks/{webhook['id']}"))
    patched = client.patch(f"/events/webhooks/{webhook['id']}", json={"enabled": False, "name": "renamed"})
    assert argus_contract.check("patch", one_path, patched)["name"] == "renamed"
    bad = client.post("/events/webhooks", json={"name": "x"})
    argus_contract.check("post", "/events/webhooks", bad)
    assert bad.status_code == 400
    deleted = client.delete(f"/events/webhooks/{webhook['id']}")
    argus_contract.check("delete", one_path, deleted)
    assert deleted.status_code == 200
    missing = client.get(f"/events/webhooks/{webhook['id']}")
    argus_contract.check("get", one_path, missing)
    assert missing.status_code == 404


def test_sandbox_events(client, api_contract, argus_contract):
    sandbox_id = create(client, api_contract, metadata={"m": "1"})
    client.post(f"/sandboxes/{sandbox_id}/pause")
    response = client.get(f"/events/sandboxes/{sandbox_id}", params={"orderAsc": "true"})
    events = argus_contract.check("get", "/events/sandboxes/{sandboxID}", response)
    assert [e["type"] for e in events] == ["sandbox.lifecycle.created", "sandbox.lifecycle.paused"]
    team = argus_contract.check("get", "/events/sandboxes", client.get("/events/sandboxes"))
    assert len(team) == 2


def test_batch_metrics_report_the_cpu_set_through_admin(fresh, client, api_contract):
    busy = create(client, api_contract)
    quiet = create(client, api_contract)
    paused = create(client, api_contract)
    client.post(f"/sandboxes/{paused}/pause").raise_for_status()
    fresh.admin.post(f"/admin/sandboxes/{busy}/metrics", json={"cpu_used_pct": 80}).raise_for_status()
    response = client.get("/sandboxes/metrics", params={"sandbox_ids": f"{busy},{quiet},{paused},unknown000000000000"})
    body = api_contract.check("get", "/sandboxes/metrics", response)
    assert response.status_code == 200
    # Only running sandboxes are listed; the one set to 80% reports it, the other a small load.
    assert sorted(body["sandboxes"]) == sorted([busy, quiet])
    assert body["sandboxes"][busy]["cpuUsedPct"] == 80
    assert body["sandboxes"][quiet]["cpuUsedPct"] < 10
    # The setting survives a pause and resume (the sandbox keeps what it was doing).
    client.post(f"/sandboxes/{busy}/pause").raise_for_status()
    client.post(f"/sandboxes/{busy}/connect", json={"timeout": 300}).raise_for_status()
    again = api_contract.check("get", "/sandboxes/metrics", client.get("/sandboxes/metrics", params={"sandbox_ids": busy}))
    assert again["sandboxes"][busy]["cpuUsedPct"] == 80
    fresh.admin.post(f"/admin/sandboxes/{busy}/metrics", json={"cpu_used_pct": None}).raise_for_status()
    cleared = client.get("/sandboxes/metrics", params={"sandbox_ids": busy}).json()
    assert cleared["sandboxes"][busy]["cpuUsedPct"] < 10
    calls = [c for c in fresh.calls() if c["route"] == "BatchMetrics"]
    assert len(calls) == 3


def test_batch_metrics_refuse_no_ids_and_more_than_100(client, api_contract):
    empty = client.get("/sandboxes/metrics", params={"sandbox_ids": ""})
    api_contract.check("get", "/sandboxes/metrics", empty)
    assert empty.status_code == 400
    too_many = ",".join(f"sbx{i:017d}" for i in range(101))
    over = client.get("/sandboxes/metrics", params={"sandbox_ids": too_many})
    api_contract.check("get", "/sandboxes/metrics", over)
    assert over.status_code == 400
    bad_cpu = client.post("/admin/sandboxes/x/metrics", json={"cpu_used_pct": 120})
    assert bad_cpu.status_code == 400


def test_session_cap_kills_a_continuous_run_and_a_pause_resets_it(fresh, client, api_contract):
    assert fresh.admin.get("/admin/session-cap").json() == {"seconds": None}
    fresh.admin.post("/admin/session-cap", json={"seconds": 3600}).raise_for_status()
    try:
        capped = create(client, api_contract, timeout=7200)
        handed_off = create(client, api_contract, timeout=7200)
        fresh.advance(3000)
        client.post(f"/sandboxes/{handed_off}/pause").raise_for_status()
        resumed = client.post(f"/sandboxes/{handed_off}/connect", json={"timeout": 7200})
        api_contract.check("post", "/sandboxes/{sandboxID}/connect", resumed)
        assert resumed.status_code == 201
        fresh.advance(700)
        gone = client.get(f"/sandboxes/{capped}")
        api_contract.check("get", "/sandboxes/{sandboxID}", gone)
        assert gone.status_code == 404
        view = fresh.admin.get(f"/admin/sandboxes/{capped}").json()
        assert (view["state"], view["kill_reason"]) == ("killed", "session_cap")
        alive = api_contract.check("get", "/sandboxes/{sandboxID}", client.get(f"/sandboxes/{handed_off}"))
        assert alive["state"] == "running"
    finally:
        fresh.admin.post("/admin/session-cap", json={"seconds": None}).raise_for_status()
    # A reset restores the configured default (off).
    fresh.reset()
    assert fresh.admin.get("/admin/session-cap").json() == {"seconds": None}
