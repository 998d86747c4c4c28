"""Forged, malformed, oversized, stale and replayed webhooks: refused with the documented 4xx
(or, for a replay, acknowledged as a duplicate) and nothing stored changes."""

import base64
import datetime
import hashlib
import json
import uuid

import pytest

from conftest import TEAM_B, assert_error, env, request


def sign(body, secret=None):
    secret = (secret or env("HOSTILE_WEBHOOK_SECRET")).encode()
    return base64.b64encode(hashlib.sha256(secret + body).digest()).decode().rstrip("=")


def event(kind, sandbox, metadata, at=None, event_id=None):
    at = at or datetime.datetime.now(datetime.timezone.utc)
    body = {
        "id": event_id or str(uuid.uuid4()),
        "version": "v2",
        "type": f"sandbox.lifecycle.{kind}",
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "event_category": "lifecycle",
        "event_label": kind,
        "sandbox_id": sandbox,
        "sandbox_execution_id": "exec-hostile",
        "sandbox_template_id": "base",
        "sandbox_build_id": "build-1",
        "sandbox_team_id": "e2b-team-a",
        "event_data": {"sandbox_metadata": metadata},
    }
    if kind in ("paused", "killed"):
        body["event_data"]["execution"] = {
            "started_at": "2026-01-01T00:00:00Z",
            "vcpu_count": 2,
            "memory_mb": 512,
            "execution_time": 30_000,
        }
    return json.dumps(body).encode()


def post(url, body, signature):
    headers = {"content-type": "application/json", "e2b-signature-version": "v1", "e2b-delivery-id": str(uuid.uuid4())}
    if signature is not None:
        headers["e2b-signature"] = signature
    return request("POST", url, body, headers)


def killed_a(world):
    """Team A's running sandbox reported killed: would end A's session if accepted."""
    return event("killed", world["sandbox_a"], {"sandmanTeam": "team-a", "sandmanProject": "alpha"})


def test_forged_signatures_are_refused(world, webhook_url, unchanged):
    body = killed_a(world)
    for signature in [
        None,
        "",
        sign(body, secret="an-attacker-secret-0123456789abcdefghij"),
        sign(body + b" "),
        sign(body)[:-2],
        "v1," + sign(body) + "x",
        "A" * 10_000,
    ]:
        assert_error(post(webhook_url, body, signature), 401, "invalid_signature")


def test_a_signature_does_not_carry_over_to_another_body(world, webhook_url, unchanged):
    signed = event("paused", "sbx-unknown", {})
    assert_error(post(webhook_url, killed_a(world), sign(signed)), 401, "invalid_signature")


def test_signed_but_malformed_events_are_refused(world, webhook_url, unchanged):
    for body in [b"{", b"[]", b"null", b'{"type": "sandbox.lifecycle.killed"}', killed_a(world)[:-1]]:
        assert_error(post(webhook_url, body, sign(body)), 400, "malformed_event")


def test_stale_and_future_events_are_refused(world, webhook_url, unchanged):
    now = datetime.datetime.now(datetime.timezone.utc)
    for at in [now - datetime.timedelta(hours=25), now + datetime.timedelta(hours=1)]:
        body = event("killed", world["sandbox_a"], {"sandmanTeam": "team-a", "sandmanProject": "alpha"}, at=at)
        assert_error(post(webhook_url, body, sign(body)), 400, "stale_event")


def test_an_oversized_webhook_is_refused(world, webhook_url, unchanged):
    body = b'{"padding": "' + b"x" * (40 * 1024) + b'"}'
    answer = post(webhook_url, body, sign(body))
    assert answer.status == 413, answer


def test_metadata_naming_another_team_moves_nothing(world, webhook_url, stored, api_url):
    """A genuine-looking event about team A's sandbox whose metadata names team B's project
    changes neither project; delivering it again is a duplicate that changes nothing."""
    before_a = world["a"].ok("GET", "/v1/projects/alpha/sandbox", statuses=(200,))
    before_b = world["b"].ok("GET", "/v1/projects/beta/sandbox", statuses=(200,))
    body = event("killed", world["sandbox_a"], {"sandmanTeam": TEAM_B, "sandmanProject": "beta", "sandmanSession": "forged"})
    first = post(webhook_url, body, sign(body))
    assert first.status == 200, first
    assert world["a"].ok("GET", "/v1/projects/alpha/sandbox", statuses=(200,))["state"] == before_a["state"] == "RUNNING"
    assert world["b"].ok("GET", "/v1/projects/beta/sandbox", statuses=(200,))["state"] == before_b["state"] == "RUNNING"
    settled = stored.snapshot()
    for _ in range(2):
        again = post(webhook_url, body, sign(body))
        assert again.status == 200, again
    assert stored.snapshot() == settled, "a replay changed the stored state"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_the_receiver_takes_posts_only(method, webhook_url, unchanged):
    answer = request(method, webhook_url, b"" if method == "PUT" else None)
    assert answer.status == 405, answer
