"""Webhook delivery faults set through the admin API, as the soak and other languages set them."""


def test_concurrent_deliveries_are_set_and_still_deliver_every_event(fresh):
    faults = {"concurrent": True, "jitter": 50}
    fresh.admin.post("/admin/webhook-faults", json=faults).raise_for_status()
    current = fresh.admin.get("/admin/webhook-faults").json()
    assert {k: current[k] for k in faults} == faults

    with fresh.client() as client:
        created = client.post(
            "/events/webhooks",
            json={
                "name": "hook",
                # Nothing listens here: every attempt fails and is recorded.
                "url": "http://127.0.0.1:9/hook",
                "events": ["sandbox.lifecycle.created", "sandbox.lifecycle.killed"],
                "signatureSecret": "secret",
            },
        )
        assert created.status_code == 201
        sandbox = client.post("/v2/sandboxes", json={"templateID": "base", "timeout": 60})
        sandbox_id = sandbox.json()["sandboxID"]
        assert client.delete(f"/sandboxes/{sandbox_id}").status_code == 204
    fresh.admin.post("/admin/webhooks/settle").raise_for_status()

    first = [d for d in fresh.admin.get("/admin/deliveries").json() if d["attempt"] == 1]
    assert sorted(d["event_type"] for d in first) == [
        "sandbox.lifecycle.created",
        "sandbox.lifecycle.killed",
    ]
