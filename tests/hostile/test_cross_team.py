"""Team B against team A's project, snapshot and sandbox: every route answers as if they did
not exist, and nothing of team A's changes."""

import pytest

from conftest import TEAM_A, TEAM_B, Api, assert_error, mint

# Every route that names a project, with a body where it takes one.
PROJECT_ROUTES = [
    ("GET", "/v1/projects/{p}", None),
    ("PUT", "/v1/projects/{p}", {"templateId": "base"}),
    ("DELETE", "/v1/projects/{p}", None),
    ("GET", "/v1/projects/{p}/events", None),
    ("GET", "/v1/projects/{p}/sandbox", None),
    ("POST", "/v1/projects/{p}/sandbox", None),
    ("DELETE", "/v1/projects/{p}/sandbox", None),
    ("POST", "/v1/projects/{p}/sandbox/activity", None),
    ("POST", "/v1/projects/{p}/sandbox/pause", None),
    ("POST", "/v1/projects/{p}/sandbox/resume", None),
    ("GET", "/v1/projects/{p}/snapshots", None),
    ("POST", "/v1/projects/{p}/snapshots", {"description": "mine now"}),
    ("PATCH", "/v1/projects/{p}/snapshots/{s}", {"pinned": True}),
    ("DELETE", "/v1/projects/{p}/snapshots/{s}", None),
    ("POST", "/v1/projects/{p}/snapshots/{s}/restore", None),
]


@pytest.mark.parametrize("method,path,body", PROJECT_ROUTES, ids=[f"{m} {p}" for m, p, _ in PROJECT_ROUTES])
def test_team_b_never_reaches_team_a(method, path, body, world, api_url, unchanged):
    b = world["b"]
    target = path.format(p="alpha", s=world["snapshot_id"])
    answer = b.call(method, target, body)
    if method == "PUT":
        # Team B may register a project named `alpha` of its own; team A's is untouched. The
        # `unchanged` check would see B's new item, so it is removed again below.
        assert answer.status in (200, 201), answer
        assert b.call("DELETE", target).status == 204
        return
    assert_error(answer, 404, "not_found")


def test_team_a_snapshot_under_team_b_project(world, api_url, unchanged):
    """Team A's snapshot id through team B's own project: still not found."""
    b = world["b"]
    for method, suffix, body in [
        ("POST", "/restore", None),
        ("DELETE", "", None),
        ("PATCH", "", {"pinned": True}),
    ]:
        answer = b.call(method, f"/v1/projects/beta/snapshots/{world['snapshot_id']}{suffix}", body)
        assert_error(answer, 404, "not_found")


def test_team_b_lists_only_its_own(world, api_url, unchanged):
    projects = world["b"].ok("GET", "/v1/projects", statuses=(200,))
    assert [p["projectId"] for p in projects["items"]] == ["beta"]
    sandbox_ids = {p["sandboxId"] for p in projects["items"]}
    assert world["sandbox_a"] not in sandbox_ids


def test_a_cursor_from_team_a_is_refused_to_team_b(world, api_url, unchanged):
    a = world["a"]
    a_page = a.ok("GET", "/v1/projects?limit=1", statuses=(200,))
    # One project: no next page; forge one of the right shape instead.
    cursor = a_page["nextCursor"] or "0123456789ab.eyJwayI6WyJTIiwiUCMxIl19"
    assert_error(world["b"].call("GET", f"/v1/projects?cursor={cursor}"), 400, "invalid_request")


def test_each_team_uses_its_own_e2b_account(world, stored):
    """Team A's sandbox is in the first emulator account, team B's in the second, none in both."""
    in_a, in_b = ({s["sandboxID"] for s in account} for account in stored.sandboxes())
    assert world["sandbox_a"] in in_a and world["sandbox_a"] not in in_b
    assert world["sandbox_b"] in in_b and world["sandbox_b"] not in in_a


def test_the_team_comes_from_the_token_only(world, api_url, unchanged):
    """Headers and query parameters naming another team change nothing."""
    b = world["b"]
    for headers in [{"x-team-id": TEAM_A}, {"x-sandman-team": TEAM_A}]:
        assert_error(b.call("GET", "/v1/projects/alpha", headers=headers), 404, "not_found")
    assert_error(b.call("GET", f"/v1/projects/alpha?team_id={TEAM_A}&teamId={TEAM_A}"), 404, "not_found")
    both = Api(api_url, mint(TEAM_B, teamId=TEAM_A, sandmanTeam=TEAM_A))
    assert_error(both.call("GET", "/v1/projects/alpha"), 404, "not_found")
