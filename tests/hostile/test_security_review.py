"""What the security review of 2026-12-06 (../shared/reviews/2026-12-06-security.md) found an
attacker could do, each tried against the running stack and refused as documented: the JSON error
body, and nothing stored changed where the request was refused.

The stack runs (scripts/test, step_hostile) with team `team-flood` limited to 2 requests a second
(burst 4), at most 3 snapshots a team and 1 pinned snapshot a project; other teams have a rate
high enough never to meet it here."""

import base64
import hashlib
import json
import time

import pytest

from conftest import TEAM_A, TEAM_B, Api, assert_error, mint, request, wait_running

ADMIN_ROLE = "sandman-admin"


def admin(team):
    return mint(team, roles=[ADMIN_ROLE])


NON_PUBLIC_URLS = [
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:169.254.169.254]/latest",
    "https://[::127.0.0.1]/hook",
    "https://[fe80::1]/hook",
    "https://[ff02::1]/hook",
    "https://[64:ff9b::a9fe:a9fe]/hook",
    "https://100.64.0.1/hook",
    "https://0.0.0.1/hook",
    "https://127.1/hook",
    "https://0x7f000001/hook",
    "https://198.18.0.1/hook",
    "https://224.0.0.251/hook",
    "https://240.0.0.1/hook",
    "https://localhost./hook",
    "https://metadata.localhost/hook",
]


@pytest.mark.parametrize("url", NON_PUBLIC_URLS)
def test_an_endpoint_at_a_non_public_address_is_refused(world, api_url, unchanged, url):
    """L1: every address that is not global unicast, however it is spelled."""
    answer = Api(api_url, admin(TEAM_A)).call("POST", "/v1/webhooks/endpoints", {"url": url, "events": ["sandbox.paused"]})
    assert_error(answer, 400, "invalid_request")
    assert answer.json()["error"]["field"] == "url", answer


def test_a_member_may_not_register_endpoints_nor_open_sandboxes_to_the_public(world, api_url, unchanged):
    """L6: only a team admin sends the team's lifecycle stream somewhere, or makes URLs public."""
    member = Api(api_url, mint(TEAM_A))
    answer = member.call("POST", "/v1/webhooks/endpoints", {"url": "https://hooks.example.com/x", "events": ["sandbox.paused"]})
    assert_error(answer, 403, "forbidden")
    answer = member.call("PUT", "/v1/projects/exposed", {"templateId": "base", "publicTraffic": True})
    assert_error(answer, 403, "forbidden")


def test_a_flooding_team_gets_429_with_retry_after_and_others_do_not(world, api_url):
    """M2: a team past its request rate is answered 429 `rate_limited`, with Retry-After."""
    flood = Api(api_url, mint("team-flood"))
    refused = None
    for _ in range(200):
        answer = flood.call("GET", "/v1/projects")
        if answer.status == 429:
            refused = answer
            break
        assert answer.status == 200, answer
    assert refused is not None, "200 requests in a row were all answered"
    assert_error(refused, 429, "rate_limited")
    retry_after = refused.headers.get("Retry-After") or refused.headers.get("retry-after")
    assert retry_after and int(retry_after) >= 1, refused.headers
    assert world["b"].call("GET", "/v1/projects").status == 200


def test_snapshots_past_the_teams_quota_and_pins_past_the_projects_limit(api_url):
    """M1: pins are limited, a fork of the running sandbox is a snapshot like any other, keepLast
    is bounded, and an automatic snapshot past the quota prunes the team's oldest unpinned one."""
    q = Api(api_url, mint("team-quota"))
    settings = {"templateId": "base", "idleTimeoutSeconds": 3600, "snapshotBeforeKill": True}
    answer = q.call("PUT", "/v1/projects/hoard", {**settings, "retention": {"keepLast": 1000}})
    assert_error(answer, 400, "invalid_request")
    assert answer.json()["error"]["field"] == "retention.keepLast", answer
    q.ok("PUT", "/v1/projects/hoard", settings)
    q.ok("POST", "/v1/projects/hoard/sandbox")
    wait_running(q, "hoard")
    taken = []
    for n in range(3):
        taken.append(q.ok("POST", "/v1/projects/hoard/snapshots", {"description": f"s{n}"})["snapshotId"])
        wait_running(q, "hoard")
    q.ok("PATCH", f"/v1/projects/hoard/snapshots/{taken[0]}", {"pinned": True})
    assert_error(q.call("PATCH", f"/v1/projects/hoard/snapshots/{taken[1]}", {"pinned": True}), 429, "quota_exceeded")
    assert_error(q.call("POST", "/v1/projects/hoard/snapshots", {}), 429, "quota_exceeded")
    assert_error(q.call("POST", "/v1/projects/hoard/fork", {"projectId": "hoard-2", "from": "running"}), 429, "quota_exceeded")
    assert q.call("GET", "/v1/projects/hoard-2").status == 404
    q.ok("DELETE", "/v1/projects/hoard/sandbox")
    kept = [s["snapshotId"] for s in q.ok("GET", "/v1/projects/hoard/snapshots")["items"]]
    assert len(kept) == 3, kept
    assert taken[0] in kept and taken[1] not in kept, (taken, kept)


def unkeyed_tag(text):
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def test_a_forged_cursor_answers_400(world, api_url, unchanged):
    """INFO: a cursor the caller computed for its own list, with a start key of its choosing."""
    start = {"pk": ["S", "PROJECT#team-b#beta"], "sk": ["S", "PROJECT"], "teamKey": ["S", "team-b"], "projectKey": ["S", "beta"]}
    inner = base64.urlsafe_b64encode(json.dumps(start).encode()).rstrip(b"=").decode()
    for path, list_name in [("/v1/projects", f"projects:{TEAM_A}"), ("/v1/projects/alpha/events", f"events:{TEAM_A}/alpha")]:
        answer = world["a"].call("GET", f"{path}?cursor={unkeyed_tag(list_name)}.{inner}")
        assert_error(answer, 400, "invalid_request")


def test_a_token_living_longer_than_allowed_is_refused(world, api_url, unchanged):
    """INFO: a far-future `exp` is not a key for ever."""
    now = int(time.time())
    for claims in [{"iat": now, "exp": now + 30 * 86400}, {"iat": None, "exp": now + 30 * 86400}]:
        assert_error(Api(api_url, mint(TEAM_A, **claims)).call("GET", "/v1/projects"), 401, "unauthorized")


def test_no_answer_may_be_sniffed(world, api_url):
    """INFO: JSON answers, errors and the dashboard's script all say nosniff."""
    for path, token in [("/v1/projects", mint(TEAM_A)), ("/v1/projects", None), ("/dashboard/dashboard.js", None), ("/dashboard", None)]:
        answer = Api(api_url, token).call("GET", path)
        sniff = answer.headers.get("X-Content-Type-Options") or answer.headers.get("x-content-type-options")
        assert sniff == "nosniff", (path, answer.headers)
