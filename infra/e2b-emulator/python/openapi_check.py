"""Validates emulator responses against E2B's own OpenAPI documents.

The specs are not vendored: scripts/setup copies or downloads them into $SANDMAN_CACHE/e2b-specs
(default <repo>/.cache/e2b-specs), each pinned by its sha256 in e2b-specs.sha256 beside this file.
E2B_OPENAPI_SPEC / E2B_ARGUS_OPENAPI_SPEC point elsewhere. A spec that is missing or differs from
its pinned checksum fails the tests under CI and skips them otherwise (the test summary names it).

Schemas are checked strictly: an object schema that lists properties rejects any other
property, so a misspelled or invented field fails the contract.
"""

import copy
import hashlib
import os
from pathlib import Path

import httpx
import jsonschema
import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
# sha256sum's format: "<digest>  <file name>" per line.
PINNED = {name: digest for digest, name in (line.split() for line in (HERE / "e2b-specs.sha256").read_text().splitlines() if line.strip())}


def under_ci() -> bool:
    """`CI` read as scripts/lib/common.sh reads it: set and not empty, "0" or "false"."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def _specs_dir() -> Path:
    return Path(os.environ.get("SANDMAN_CACHE", REPO_ROOT / ".cache")) / "e2b-specs"


def load_spec(env_name: str, default_name: str) -> dict:
    path = Path(os.environ.get(env_name) or _specs_dir() / default_name)
    problem = None
    if not path.is_file():
        problem = f"E2B's OpenAPI spec not found at {path} (scripts/setup fetches it; or set {env_name})"
    elif hashlib.sha256(path.read_bytes()).hexdigest() != PINNED[default_name]:
        problem = f"{path} does not match the pinned sha256 of {default_name} in e2b-specs.sha256"
    if problem:
        if under_ci():
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)
    with path.open() as handle:
        return yaml.safe_load(handle)


def _to_json_schema(node):
    """OpenAPI 3.0 schema -> JSON Schema: `nullable`, and strict objects."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _to_json_schema(value) for key, value in node.items()}
    if out.pop("nullable", False):
        out = {"anyOf": [out, {"type": "null"}]}
        return out
    for openapi_only in ("deprecated", "example", "x-not-implemented", "discriminator", "xml"):
        out.pop(openapi_only, None)
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


class Contract:
    def __init__(self, spec: dict):
        self.spec = spec
        self.schemas = _to_json_schema(copy.deepcopy(spec["components"]["schemas"]))
        self.format_checker = jsonschema.FormatChecker(formats=["date-time"])

    def _resolve(self, node: dict) -> dict:
        while "$ref" in node:
            parts = node["$ref"].lstrip("#/").split("/")
            node = self.spec
            for part in parts:
                node = node[part]
        return node

    def validate_body(self, body, schema: dict) -> None:
        document = dict(_to_json_schema(copy.deepcopy(schema)))
        document["components"] = {"schemas": self.schemas}
        jsonschema.validate(body, document, format_checker=self.format_checker)

    def check(self, method: str, spec_path: str, response: httpx.Response, extra_statuses=()):
        """The status must be one the operation declares (or a documented extra, which
        carries E2B's Error body); the body must match that status's schema."""
        operation = self.spec["paths"][spec_path][method.lower()]
        status = str(response.status_code)
        declared = operation["responses"]
        if status in declared:
            answer = self._resolve(declared[status])
        elif response.status_code in extra_statuses:
            answer = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        else:
            raise AssertionError(
                f"{method} {spec_path} answered {status}, not declared by the spec "
                f"({sorted(declared)}): {response.text}"
            )
        content = answer.get("content", {}).get("application/json")
        if content is None:
            assert response.content == b"", f"{method} {spec_path} {status} must have no body"
            return None
        body = response.json()
        self.validate_body(body, content["schema"])
        return body
