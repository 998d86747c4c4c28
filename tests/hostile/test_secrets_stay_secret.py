"""No log line of the stack, and no answer it gave, contains a key or secret it was configured
with. Runs last (conftest.py orders it), over everything the other tests made the stack log."""

from conftest import env, request


def configured_secrets():
    names = ["HOSTILE_JWT_SECRET", "HOSTILE_WEBHOOK_SECRET", "HOSTILE_E2B_KEY_A", "HOSTILE_E2B_KEY_B"]
    return {name: env(name) for name in names}


def leaks(text):
    """Each configured secret found in `text`, whole or as any 12-character piece of it."""
    found = []
    for name, secret in configured_secrets().items():
        pieces = {secret[i : i + 12] for i in range(0, len(secret) - 11)}
        if any(piece in text for piece in pieces):
            found.append(name)
    return found


def test_the_stack_log_quotes_no_secret():
    path = env("HOSTILE_STACK_LOG")
    with open(path, encoding="utf-8", errors="replace") as log:
        text = log.read()
    assert len(text.splitlines()) > 100, f"{path} is too short to have logged the suite"
    assert leaks(text) == []


def test_the_leak_check_would_see_a_leak():
    """The check above is not vacuous: a line quoting part of a key is caught."""
    key = env("HOSTILE_E2B_KEY_B")
    assert leaks(f'{{"level":"WARN","message":"bad key {key[5:20]}..."}}') == ["HOSTILE_E2B_KEY_B"]


def test_no_answer_quotes_a_secret(world, api_url, webhook_url):
    """Answers to the requests most likely to echo what they were given."""
    b = world["b"]
    secret = env("HOSTILE_JWT_SECRET")
    answers = [
        request("GET", f"{api_url}/v1/projects", headers={"authorization": f"Bearer {secret}"}),
        b.call("GET", "/v1/projects/beta/sandbox"),
        b.call("POST", "/v1/projects/beta/sandbox"),
        request("POST", webhook_url, env("HOSTILE_WEBHOOK_SECRET").encode(), {"e2b-signature": "x"}),
        request("GET", f"{api_url}/openapi.json"),
        request("GET", f"{api_url}/dashboard"),
    ]
    for answer in answers:
        assert leaks(answer.body.decode("utf-8", "replace")) == [], answer
