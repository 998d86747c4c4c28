"""The IAM check (scripts/lib/iam_check.py) and the HTTP API as template.yaml builds it.

The check's own rules on small templates: a call no statement allows is denied and named, a grant
no call used is named, index ARNs and LeadingKeys conditions are read as IAM reads them. Then the
real template: the calls the deploy review found missing (2026-12-06) are allowed to the functions
that make them, and the API's routes, authorizer and CORS are what the docs say.
"""

import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "scripts" / "lib"))

import iam_check  # noqa: E402
import iam_eval  # noqa: E402
import sam_translate  # noqa: E402

TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/sandman-Table"
ANSWERS = {"JwtIssuer": "https://auth.example.com/", "JwtAudience": "sandman", "JwtAcceptHs256": "true"}


def stack_with(statements, binary="worker"):
    """A template of one table and one function whose role has `statements`."""
    expanded = {
        "Resources": {
            "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                "GlobalSecondaryIndexes": [{"IndexName": "byTeam", "KeySchema": [{"AttributeName": "teamKey", "KeyType": "HASH"}]}],
            }},
            "Fn": {"Type": "AWS::Lambda::Function", "Metadata": {"BuildProperties": {"Binary": binary}},
                   "Properties": {"Role": {"Fn::GetAtt": ["FnRole", "Arn"]}}},
            "FnRole": {"Type": "AWS::IAM::Role", "Properties": {
                "Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": statements}}]}},
        }
    }
    return iam_check.Stack(expanded, {})


def calls(*lines, function="worker"):
    return {function: {json.dumps(line, sort_keys=True) for line in lines}}


GET_PROJECT = {"service": "dynamodb", "operation": "GetItem", "table": "t", "key": {"pk": "PROJECT#a#b", "sk": "PROJECT"}}
QUERY_BY_TEAM = {"service": "dynamodb", "operation": "Query", "table": "t", "index": "byTeam", "keyCondition": {"teamKey": "a"}}


def test_a_call_no_statement_allows_is_denied_and_named():
    stack = stack_with([{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": {"Fn::GetAtt": ["Table", "Arn"]}}])
    problems, _ = iam_check.check(stack, calls(GET_PROJECT, QUERY_BY_TEAM))
    assert len(problems) == 1, problems
    assert "dynamodb:Query" in problems[0] and "index/byTeam" in problems[0] and "implicit-deny" in problems[0]


def test_a_grant_on_the_table_does_not_cover_its_indexes_and_an_unused_grant_is_named():
    stack = stack_with([
        {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:DeleteItem"],
         "Resource": {"Fn::GetAtt": ["Table", "Arn"]}},
    ])
    problems, _ = iam_check.check(stack, calls(GET_PROJECT, QUERY_BY_TEAM))
    assert any("index/byTeam" in p and "implicit-deny" in p for p in problems), problems
    assert any("grants dynamodb:Query on " + TABLE_ARN + "," in p for p in problems), problems
    assert any("grants dynamodb:DeleteItem" in p for p in problems), problems


def test_leading_keys_hold_every_item_to_its_partitions_and_each_pattern_must_be_used():
    stack = stack_with([{
        "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": {"Fn::GetAtt": ["Table", "Arn"]},
        "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["PROJECT#*", "DELIVERIES#*"]}},
    }])
    put_team = {"service": "dynamodb", "operation": "TransactWriteItems", "part": "Put", "table": "t",
                "key": {"pk": "TEAM#a", "sk": "BUDGET"}}
    problems, _ = iam_check.check(stack, calls(GET_PROJECT, put_team))
    assert any("dynamodb:PutItem" in p and "TEAM#a" in p and "implicit-deny" in p for p in problems), problems
    assert any("'DELIVERIES#*'" in p and "no recorded call used" in p for p in problems), problems
    assert not any("PROJECT#a#b" in p for p in problems), problems


def test_iam_set_operators_over_missing_keys():
    # ForAllValues over no values is true (IAM's well-known trap); ForAnyValue is false.
    assert iam_eval.condition_holds("ForAllValues:StringLike", "k", ["A*"], {})
    assert not iam_eval.condition_holds("ForAnyValue:StringLike", "k", ["A*"], {})
    assert not iam_eval.condition_holds("StringEquals", "k", ["A"], {})
    assert iam_eval.condition_holds("StringEqualsIfExists", "k", ["A"], {})
    deny = [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}, {"Effect": "Deny", "Action": "s3:Delete*", "Resource": "*"}]
    assert iam_eval.decide(deny, iam_eval.Request("s3:DeleteObject", "arn:aws:s3:::b/k")) == "deny"
    assert iam_eval.decide(deny, iam_eval.Request("S3:GetObject", "arn:aws:s3:::b/k")) == "allow"


def test_a_function_with_no_recorded_call_fails_the_check():
    stack = stack_with([{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": {"Fn::GetAtt": ["Table", "Arn"]}}])
    problems, _ = iam_check.check(stack, {})
    assert any("no recorded call" in p for p in problems), problems


@pytest.fixture(scope="module")
def template():
    return (REPO_ROOT / "template.yaml").read_text(encoding="utf-8")


def expanded(template_text, **answers):
    return sam_translate.expand(template_text, {**ANSWERS, **answers})


def test_the_calls_the_deploy_review_found_denied_are_allowed_to_their_functions(template):
    stack = iam_check.Stack(expanded(template), ANSWERS)
    functions = stack.functions()
    review = [
        ("idle-enforcer", {"service": "dynamodb", "operation": "Query", "table": "t", "index": "byTeam", "keyCondition": {"teamKey": "a"}}),
        ("idle-enforcer", {"service": "dynamodb", "operation": "Query", "table": "t", "index": "bySandbox", "keyCondition": {"sandboxKey": "s"}}),
        ("idle-enforcer", {"service": "dynamodb", "operation": "DeleteItem", "table": "t", "key": {"pk": "BUDGET#REACHED", "sk": "a"}}),
        ("snapshot-pruner", {"service": "dynamodb", "operation": "TransactWriteItems", "part": "Put", "table": "t",
                             "key": {"pk": "PROJECT#a#b", "sk": "EVENT#1"}}),
        ("api", {"service": "dynamodb", "operation": "Query", "table": "t", "index": "bySandbox", "keyCondition": {"sandboxKey": "s"}}),
    ]
    for binary, call in review:
        request = stack.request(call)
        assert iam_eval.decide(functions[binary]["statements"], request) == "allow", (binary, request)
    # A data key not bound to a team cannot be opened, nor any key by the webhook function.
    bound = {"service": "kms", "operation": "Decrypt", "key": "sandman-TeamKeysKey", "encryptionContext": ["sandmanTeam"]}
    assert iam_eval.decide(functions["idle-enforcer"]["statements"], stack.request(bound)) == "allow"
    unbound = stack.request({**bound, "encryptionContext": []})
    assert iam_eval.decide(functions["idle-enforcer"]["statements"], unbound) == "implicit-deny"
    assert iam_eval.decide(functions["webhook"]["statements"], stack.request(bound)) == "implicit-deny"
    # ...and the webhook function may not read a delivery log.
    delivery = stack.request({"service": "dynamodb", "operation": "GetItem", "table": "t", "key": {"pk": "DELIVERIES#a#e", "sk": "D"}})
    assert iam_eval.decide(functions["webhook"]["statements"], delivery) == "implicit-deny"


def resolved_api(template_text, **answers):
    values = {**ANSWERS, **answers}
    stack = iam_check.Stack(expanded(template_text, **answers), values)
    return stack.resolve(stack.resources["HttpApi"]["Properties"]["Body"])


def test_with_a_jwks_api_gateway_refuses_tokenless_requests_except_on_the_public_routes(template):
    body = resolved_api(template, JwtJwksUrl="https://auth.example.com/.well-known/jwks.json", JwtAcceptHs256="false")
    scheme = body["components"]["securitySchemes"]["jwt"]["x-amazon-apigateway-authorizer"]
    assert scheme["jwtConfiguration"] == {"issuer": "https://auth.example.com/", "audience": ["sandman"]}
    assert scheme["identitySource"] == "$request.header.Authorization"
    paths = body["paths"]
    for path in ("/{proxy+}", "/"):
        assert paths[path]["x-amazon-apigateway-any-method"]["security"] == [{"jwt": []}]
    for path in ("/healthz", "/openapi.json", "/dashboard", "/dashboard/dashboard.js"):
        assert "security" not in paths[path]["get"], path
    assert "security" not in paths["/{proxy+}"]["options"], "a CORS preflight carries no token"
    for methods in paths.values():
        for method in methods.values():
            assert method["x-amazon-apigateway-integration"]["type"] == "aws_proxy"


def test_in_hs256_mode_or_with_the_authorizer_off_the_function_checks_every_token(template):
    for answers in ({}, {"JwtJwksUrl": "https://auth.example.com/jwks.json", "JwtAcceptHs256": "false", "ApiJwtAuthorizer": "false"}):
        body = resolved_api(template, **answers)
        assert "components" not in body, answers
        assert all("security" not in m for methods in body["paths"].values() for m in methods.values()), answers


def test_cors_lets_the_browser_client_poll_with_etags_and_read_retry_after(template):
    assert "x-amazon-apigateway-cors" not in resolved_api(template)
    cors = resolved_api(template, CorsAllowedOrigins="https://app.example.com, https://b.example.com")["x-amazon-apigateway-cors"]
    assert cors["allowOrigins"] == ["https://app.example.com", "https://b.example.com"]
    assert {"authorization", "content-type", "if-none-match"} <= set(cors["allowHeaders"])
    assert {"etag", "retry-after"} <= set(cors["exposeHeaders"])
