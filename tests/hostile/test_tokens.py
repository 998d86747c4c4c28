"""Tokens the stack must refuse: each answers 401 `unauthorized` and changes nothing."""

import time

import pytest

from conftest import TEAM_A, Api, assert_error, mint

NOW = int(time.time())

BAD_TOKENS = {
    "forged (signed with another secret)": lambda: mint(TEAM_A, secret="not-the-deployment-secret-0123456789abcdef"),
    "expired": lambda: mint(TEAM_A, iat=NOW - 7200, exp=NOW - 3600),
    "not yet valid": lambda: mint(TEAM_A, nbf=NOW + 3600),
    "wrong issuer": lambda: mint(TEAM_A, iss="https://attacker.example"),
    "no issuer": lambda: mint(TEAM_A, iss=None),
    "wrong audience": lambda: mint(TEAM_A, aud="another-api"),
    "no audience": lambda: mint(TEAM_A, aud=None),
    "no expiry": lambda: mint(TEAM_A, exp=None),
    "alg none": lambda: mint(TEAM_A, alg="none"),
    "alg none, signature kept": lambda: mint(TEAM_A, alg="none") + mint(TEAM_A).rsplit(".", 1)[1],
    "HS512 with the right secret": lambda: mint(TEAM_A, alg="HS512"),
    "no team claim": lambda: mint(TEAM_A, team_id=None),
    "team claim not a string": lambda: mint(TEAM_A, team_id=["team-a"]),
    "team claim not an id": lambda: mint(TEAM_A, team_id="team#a"),
    "payload swapped under a valid signature": lambda: swap_payload(),
    "garbage": lambda: "not.a.jwt",
    "empty": lambda: "",
}


def swap_payload():
    """Team B's valid signature over team A's claims."""
    a, b = mint(TEAM_A).split("."), mint("team-b").split(".")
    return ".".join([b[0], a[1], b[2]])


@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
def test_a_bad_token_is_refused(name, api_url, unchanged):
    api = Api(api_url, BAD_TOKENS[name]())
    for method, path in [("GET", "/v1/projects"), ("GET", "/v1/projects/alpha"), ("DELETE", "/v1/projects/alpha")]:
        assert_error(api.call(method, path), 401, "unauthorized")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer ",
        "bearer",
        "Basic dGVhbS1hOnNlY3JldA==",
        "Token {token}",
        "Bearer {token} extra",
        "Bearer " + "A" * 16_000,
    ],
    ids=lambda h: (h or "absent")[:24],
)
def test_a_malformed_authorization_header_is_refused(header, api_url, unchanged):
    api = Api(api_url, None)
    headers = {} if header is None else {"authorization": header.replace("{token}", mint(TEAM_A))}
    answer = api.call("DELETE", "/v1/projects/alpha", headers=headers)
    assert_error(answer, 401, "unauthorized")
