"""The hostile-input suite's view of a running local stack (`sandman-local dev`, started by
scripts/test's step with two teams and two E2B emulator accounts): the URLs and secrets it was
started with, tokens as the stack accepts them, and the stored state to compare before and after.

Environment (all set by scripts/test): SANDMAN_API_URL, SANDMAN_WEBHOOK_URL, E2B_EMULATOR_URL,
SANDMAN_TABLE, HOSTILE_JWT_SECRET, HOSTILE_JWT_ISSUER, HOSTILE_JWT_AUDIENCE, HOSTILE_WEBHOOK_SECRET,
HOSTILE_E2B_KEY_A, HOSTILE_E2B_KEY_B, HOSTILE_STACK_LOG.
"""

import base64
import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.request

import boto3
import pytest

TEAM_A = "team-a"
TEAM_B = "team-b"


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run this suite through scripts/test (step_hostile)")
    return value


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(team, secret=None, alg="HS256", **claims):
    """A JWT for `team` as the stack accepts it; keyword arguments override or drop (None) claims."""
    now = int(time.time())
    body = {
        "sub": "hostile",
        "team_id": team,
        "iat": now,
        "exp": now + 600,
        "iss": env("HOSTILE_JWT_ISSUER"),
        "aud": env("HOSTILE_JWT_AUDIENCE"),
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64url(json.dumps(body).encode())
    signing_input = f"{header}.{payload}".encode()
    if alg == "none":
        return f"{header}.{payload}."
    key = (secret or env("HOSTILE_JWT_SECRET")).encode()
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    return f"{header}.{payload}.{b64url(hmac.new(key, signing_input, digest).digest())}"


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"{self.status} {self.body[:300]!r}"


def request(method, url, body=None, headers=None, timeout=30):
    """Raw HTTP: bytes in, status, headers and bytes out, errors included."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    headers = dict(headers or {})
    if data is not None:
        headers.setdefault("content-type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return Answer(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as err:
        return Answer(err.code, dict(err.headers), err.read())


class Api:
    def __init__(self, base, token):
        self.base = base.rstrip("/")
        self.token = token

    def call(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if self.token is not None:
            headers.setdefault("authorization", f"Bearer {self.token}")
        return request(method, self.base + path, body, headers)

    def ok(self, method, path, body=None, statuses=(200, 201, 202, 204)):
        answer = self.call(method, path, body)
        assert answer.status in statuses, f"{method} {path}: {answer}"
        return answer.json() if answer.body else None


def assert_error(answer, status, code=None):
    """The documented refusal: `status` and `{"error": {"code", "message"}}`."""
    assert answer.status == status, answer
    assert answer.headers.get("content-type", answer.headers.get("Content-Type", "")).startswith(
        "application/json"
    ), answer.headers
    error = answer.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"], answer
    if code is not None:
        assert error["code"] == code, answer


class Stored:
    """What the stack holds: every DynamoDB Local item of its table and every emulator sandbox
    of both accounts."""

    def __init__(self):
        self.table = env("SANDMAN_TABLE")
        self.dynamodb = boto3.client("dynamodb", endpoint_url=env("AWS_ENDPOINT_URL_DYNAMODB"))
        self.emulator = env("E2B_EMULATOR_URL").rstrip("/")
        self.keys = [env("HOSTILE_E2B_KEY_A"), env("HOSTILE_E2B_KEY_B")]

    def items(self):
        items, start = [], None
        while True:
            page = self.dynamodb.scan(
                TableName=self.table, ConsistentRead=True, **({"ExclusiveStartKey": start} if start else {})
            )
            items += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                # Binary attributes (sealed secrets) come back as bytes: ordered by their repr.
                return sorted(items, key=lambda item: json.dumps(item, sort_keys=True, default=repr))

    def sandboxes(self):
        found = []
        for key in self.keys:
            answer = request("GET", f"{self.emulator}/v2/sandboxes?state=running,paused", headers={"x-api-key": key})
            assert answer.status == 200, answer
            found.append(sorted(answer.json(), key=lambda s: s["sandboxID"]))
        return found

    def snapshot(self):
        return {"items": self.items(), "sandboxes": self.sandboxes()}


def pytest_collection_modifyitems(items):
    """The log check runs last, over everything the other tests made the stack log."""
    items.sort(key=lambda item: item.module.__name__ == "test_secrets_stay_secret")


@pytest.fixture(scope="session")
def stored():
    return Stored()


@pytest.fixture(scope="session")
def api_url():
    return env("SANDMAN_API_URL")


@pytest.fixture(scope="session")
def webhook_url():
    return env("SANDMAN_WEBHOOK_URL")


def wait_running(api, project, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = api.ok("GET", f"/v1/projects/{project}/sandbox", statuses=(200,))
        if status["state"] == "RUNNING":
            return status
        time.sleep(0.3)
    pytest.fail(f"{project}'s sandbox was not RUNNING after {timeout}s")


@pytest.fixture(scope="session")
def world(api_url):
    """Team A: project `alpha` with a running sandbox and a snapshot of it. Team B: project
    `beta` with a running sandbox on its own E2B account. Idle timeouts long enough that the
    stack's timers change nothing while the suite runs."""
    a = Api(api_url, mint(TEAM_A))
    b = Api(api_url, mint(TEAM_B))
    settings = {"templateId": "base", "idleTimeoutSeconds": 3600, "sandboxTimeoutSeconds": 3600}
    a.ok("PUT", "/v1/projects/alpha", settings)
    a.ok("POST", "/v1/projects/alpha/sandbox")
    running_a = wait_running(a, "alpha")
    snapshot = a.ok("POST", "/v1/projects/alpha/snapshots", {"description": "team A's work"})
    wait_running(a, "alpha")
    b.ok("PUT", "/v1/projects/beta", settings)
    b.ok("POST", "/v1/projects/beta/sandbox")
    running_b = wait_running(b, "beta")
    return {
        "a": a,
        "b": b,
        "snapshot_id": snapshot["snapshotId"],
        "e2b_snapshot": snapshot.get("e2bSnapshotId") or snapshot.get("templateId"),
        "sandbox_a": running_a["sandboxId"],
        "sandbox_b": running_b["sandboxId"],
    }


@pytest.fixture
def unchanged(world, stored):
    """Asserts that the stored state after the test is the state before it."""
    before = stored.snapshot()
    yield
    after = stored.snapshot()
    assert after["sandboxes"] == before["sandboxes"], "the emulator's sandboxes changed"
    assert after["items"] == before["items"], "DynamoDB Local's items changed"
