"""Template and snapshot-name tricks, malformed and oversized bodies, paths and headers: each
answers its documented 4xx with the JSON error body and changes nothing."""

import pytest

from conftest import assert_error, request

TEMPLATE_TRICKS = [
    "sandman-{snapshot}",
    "SANDMAN-{snapshot}",
    "Sandman-{snapshot}",
    "sandman-",
    "team-a/sandman-{snapshot}",
    "sandman-{snapshot}:latest",
    "abcdefghij0123456789",  # the shape of an E2B template or snapshot id
    "e2b-team-a/base",
    "team-a/base",
    "base/../sandman-{snapshot}",
    "base ",
    " base",
    "base\u0000",
    "bäse",
    "",
    "x" * 129,
    "not-on-the-allowlist",
]


@pytest.mark.parametrize("template", TEMPLATE_TRICKS, ids=lambda t: repr(t[:30]))
def test_a_template_trick_is_refused_naming_template_id(template, world, unchanged):
    b = world["b"]
    template = template.format(snapshot=world["snapshot_id"])
    for project in ("beta", "newcomer"):
        answer = b.call("PUT", f"/v1/projects/{project}", {"templateId": template})
        assert_error(answer, 400, "invalid_request")
        assert answer.json()["error"].get("field") == "templateId", answer


SNAPSHOT_IDS = ["..", ".", "%2e%2e", "..%2falpha", "a%2fb", "a%23b", "%00", "x" * 129, "%C3%A9", "sandman-x%20y"]


@pytest.mark.parametrize("snapshot", SNAPSHOT_IDS)
def test_a_snapshot_id_trick_is_refused(snapshot, world, unchanged):
    b = world["b"]
    for method, suffix, body in [("POST", "/restore", None), ("DELETE", "", None), ("PATCH", "", {"pinned": True})]:
        answer = b.call(method, f"/v1/projects/beta/snapshots/{snapshot}{suffix}", body)
        # 400 for an id the pattern refuses; 404 where the client or router resolved the path
        # elsewhere (`..`), or 405 where that other route does not take the method.
        assert answer.status in (400, 404, 405), answer
        assert_error(answer, answer.status)


PROJECT_IDS = ["%2e%2e", ".hidden", "a%2fb", "a%23b", "a%20b", "x" * 129, "%C3%A9", "a%00"]


@pytest.mark.parametrize("project", PROJECT_IDS)
def test_a_project_id_trick_is_refused(project, world, unchanged):
    b = world["b"]
    for method, body in [("PUT", {"templateId": "base"}), ("GET", None), ("DELETE", None)]:
        answer = b.call(method, f"/v1/projects/{project}", body)
        assert_error(answer, 400, "invalid_request")
        assert answer.json()["error"].get("field") == "projectId", answer


MALFORMED_BODIES = [
    b"{",
    b"null",
    b"[]",
    b'["base", 600]',
    b'"base"',
    b"\xff\xfe{}",
    b'{"templateId": "base", "templateId": "sandman-x"}',
    b'{"templateId": "base", "unknown": 1}',
    b'{"templateId": 7}',
    b'{"templateId": "base", "idleTimeoutSeconds": -1}',
    b'{"templateId": "base", "idleTimeoutSeconds": 0}',
    b'{"templateId": "base", "idleTimeoutSeconds": 60.5}',
    b'{"templateId": "base", "idleTimeoutSeconds": 1e400}',
    b'{"templateId": "base", "idleTimeoutSeconds": "600"}',
    b'{"templateId": "base", "sandboxTimeoutSeconds": 86401}',
    b'{"templateId": "base", "retention": [10, null]}',
    b'{"templateId": "base", "retention": {"keepLast": 1001}}',
    b'{"templateId": "base", "retention": {"maxAgeSeconds": 1}}',
    b'{"templateId": "base", "publicTraffic": "yes"}',
    b'{"templateId": "base"' + b', "x": [' * 200 + b"]" * 200 + b"}",
]


@pytest.mark.parametrize("body", MALFORMED_BODIES, ids=lambda b: repr(b[:40]))
def test_a_malformed_project_body_is_refused(body, world, unchanged):
    answer = world["b"].call("PUT", "/v1/projects/beta", body)
    assert_error(answer, 400, "invalid_request")


@pytest.mark.parametrize(
    "method,path",
    [("PUT", "/v1/projects/beta"), ("POST", "/v1/projects/beta/snapshots"), ("PATCH", "/v1/projects/beta/snapshots/x")],
)
def test_an_oversized_body_is_refused(method, path, world, unchanged):
    body = b'{"templateId": "base", "description": "' + b"x" * (70 * 1024) + b'"}'
    assert_error(world["b"].call(method, path, body), 413, "payload_too_large")


def test_malformed_snapshot_bodies_are_refused(world, unchanged):
    b = world["b"]
    for body in [b'{"description": "' + b"x" * 501 + b'"}', b'{"description": 1}', b"[]", b'{"pinned": true}']:
        assert_error(b.call("POST", "/v1/projects/beta/snapshots", body), 400, "invalid_request")
    for body in [b"{}", b'{"pinned": "yes"}', b"[true]", b'{"pinned": null}']:
        assert_error(b.call("PATCH", f"/v1/projects/alpha/snapshots/{world['snapshot_id']}", body), 400)


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=-1", "limit=ten", "limit=1e2", "cursor=forged", "cursor=0123456789ab.eyJwayI6WyJTIiwiUCMxIl19"])
def test_a_bad_page_query_is_refused(query, world, unchanged):
    for path in ["/v1/projects", "/v1/projects/beta/events", "/v1/projects/beta/snapshots"]:
        assert_error(world["b"].call("GET", f"{path}?{query}"), 400, "invalid_request")


def test_odd_headers_change_nothing(world, unchanged):
    b = world["b"]
    for headers in [
        {"content-type": "text/plain"},
        {"content-type": "application/json; charset=utf-16"},
        {"x-http-method-override": "DELETE"},
        {"x-forwarded-for": "127.0.0.1"},
        {"if-none-match": "*" * 8000},
    ]:
        answer = b.call("GET", "/v1/projects/alpha", headers=headers)
        assert_error(answer, 404, "not_found")
    # A method override never turns a read into a delete.
    assert b.call("GET", "/v1/projects/beta", headers={"x-http-method-override": "DELETE"}).status == 200


def test_unknown_routes_and_methods_answer_json(world, api_url, unchanged):
    b = world["b"]
    assert_error(b.call("GET", "/v1/teams"), 404, "not_found")
    assert_error(b.call("GET", "/v1/projects/beta/sandbox/../../../openapi.json/x"), 404)
    answer = b.call("PATCH", "/v1/projects/beta")
    assert_error(answer, 405, "method_not_allowed")
    raw = request("POST", f"{api_url}/v1/projects/beta/sandbox", b"", {"authorization": "Bearer"})
    assert_error(raw, 401, "unauthorized")
