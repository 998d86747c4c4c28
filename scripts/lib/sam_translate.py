"""Expands template.yaml with the SAM translator, offline, into plain CloudFormation.

cfn-lint checks a SAM template as written; references to resources that SAM generates
(an event's rule, a function URL) are only checked once the template is expanded.
Usage: python sam_translate.py TEMPLATE OUTPUT.json [Name=Value ...]
"""

import json
import logging
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template uses no managed policies by name, so nothing needs looking up in IAM."""

    def load(self):
        return {}

    def get_managed_policy_map(self):
        return {}


def expand(template_text: str, parameters: dict | None = None) -> dict:
    """The template as CloudFormation sees it after the SAM transform. Parameters without a
    default get a placeholder unless `parameters` gives them; the rest keep their defaults."""
    # `sam package` replaces local CodeUri paths with S3 locations before the transform runs.
    template = yaml_parse(template_text.replace("CodeUri: .", "CodeUri: s3://sandman-artifacts/code.zip"))
    values = {
        name: "placeholder"
        for name, spec in template.get("Parameters", {}).items()
        if "Default" not in spec
    }
    values.update(parameters or {})
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    # The translator reads the region from the environment (scripts/lint-template sets it).
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return transform(template, values, NoManagedPolicies())


def main(template_path: str, output_path: str, parameters: dict) -> None:
    with open(template_path, encoding="utf-8") as f:
        expanded = expand(f.read(), parameters)
    with open(output_path, "w", encoding="utf-8") as f:
        json.dump(expanded, f, indent=1)


if __name__ == "__main__":
    # The translator warns about its own usage metrics at exit; errors still raise.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    main(sys.argv[1], sys.argv[2], dict(p.split("=", 1) for p in sys.argv[3:]))
