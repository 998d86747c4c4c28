"""docs/deploy.md's commands, run as written, in order, in one bash with `set -euo pipefail`
(an unset variable or a failing pipe stops it), against stand-ins: `aws` answers for a stack
and keeps its secrets in files, `sam`, `cargo` and `scripts/setup` do nothing, and
`sandman-local` records how it was called. What is judged: the E2B key merged into the secret
(nothing else in it lost), and each operator command run with the stack's values and region.
"""

import json
import os
import re
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
GUIDE = REPO_ROOT / "docs" / "deploy.md"
KEY = "e2b_guide_test_key_0123456789abcdef0123456789"
OUTPUTS = {
    "ApiUrl": "https://api.example.execute-api.us-east-1.amazonaws.com/",
    "WebhookUrl": "https://hook.lambda-url.us-east-1.on.aws/",
    "E2bSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:e2b",
    "WebhookSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:webhook",
    "JwtSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt",
    "TableName": "sandman-Table-ABC",
    "TeamKeysKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234",
    "SchedulesDeadLetterQueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
}
SECRETS = {
    "e2b": {"e2bApiKey": "", "teamE2bApiKeys": {"acme": "e2b_acme_key_0123456789abcdef0123456789ab"}},
    "webhook": {"webhookSecret": "generated-webhook-secret-0123456789abcdef", "previousWebhookSecrets": []},
}

AWS = r"""#!/usr/bin/env bash
set -eu
echo "aws $* (region ${AWS_REGION:-none})" >> "$STANDINS/calls.log"
query=""; secret=""; prev=""
for arg; do
  case "$prev" in --query) query="$arg" ;; --secret-id) secret="${arg##*:}" ;; esac
  prev="$arg"
done
case "$1 $2" in
  "cloudformation describe-stacks")
    key="$(sed -n "s/.*OutputKey=='\([A-Za-z0-9]*\)'.*/\1/p" <<<"$query")"
    jq -r --arg k "$key" '.[$k]' "$STANDINS/outputs.json" ;;
  "secretsmanager get-secret-value") cat "$STANDINS/secret-$secret.json" ;;
  # Replaced once the whole new value is read, as Secrets Manager stores a new version.
  "secretsmanager put-secret-value") tmp="$(mktemp)"; cat > "$tmp"; mv "$tmp" "$STANDINS/secret-$secret.json" ;;
  "sqs "*|"dynamodb "*|"kms "*|"lambda "*) ;;
  *) echo "the stand-in aws does not know: $*" >&2; exit 2 ;;
esac
"""
RECORDER = r"""#!/usr/bin/env bash
{ echo "$(basename "$0") $*"; env | grep -E '^(AWS_REGION|SANDMAN_|E2B_)' | sort | sed 's/^/  /'; } >> "$STANDINS/calls.log"
"""


def blocks():
    """The guide's bash blocks, in order, with the heading each is under."""
    heading, found = None, []
    for match in re.finditer(r"^(## [^\n]*)$|^```bash\n(.*?)^```", GUIDE.read_text(encoding="utf-8"), re.M | re.S):
        if match.group(1):
            heading = match.group(1)[3:]
        else:
            found.append((heading, match.group(2)))
    return found


def test_the_guide_runs_as_written_against_stand_ins(tmp_path):
    standins = tmp_path / "bin"
    standins.mkdir()
    (standins / "aws").write_text(AWS)
    for tool in ("sam", "cargo"):
        (standins / tool).write_text(RECORDER)
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "setup").write_text(RECORDER)
    (tmp_path / "target" / "debug").mkdir(parents=True)
    (tmp_path / "target" / "debug" / "sandman-local").write_text(RECORDER)
    for path in [*standins.iterdir(), tmp_path / "scripts" / "setup", tmp_path / "target" / "debug" / "sandman-local"]:
        path.chmod(0o755)
    (standins / "outputs.json").write_text(json.dumps(OUTPUTS))
    for name, doc in SECRETS.items():
        (standins / f"secret-{name}.json").write_text(json.dumps(doc))

    sections = ["Once per shell", "First deploy", "Put the E2B key in", "Register E2B's webhook",
                "Smoke-test the stack", "Remove Sandman"]
    chosen = [body for heading, body in blocks() if heading in sections]
    assert len(chosen) >= len(sections), [h for h, _ in blocks()]
    script = "set -euo pipefail\n" + "\n".join(chosen)
    env = {
        "PATH": f"{standins}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "STANDINS": str(standins),
    }
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, input=KEY + "\n", text=True, capture_output=True, timeout=60,
    )
    calls = (standins / "calls.log").read_text() if (standins / "calls.log").exists() else ""
    assert result.returncode == 0, f"{result.stderr}\n{calls}"
    assert KEY not in result.stdout + result.stderr, "the key is never echoed"

    merged = json.loads((standins / "secret-e2b.json").read_text())
    assert merged == {**SECRETS["e2b"], "e2bApiKey": KEY}, "the key is merged in, nothing else is lost"

    commands = calls.split("sandman-local ")[1:]
    registered = next(c for c in commands if c.startswith("register-account-webhook"))
    assert f"--base-url {OUTPUTS['WebhookUrl']}" in registered
    for variable, value in [("E2B_API_KEY", KEY), ("AWS_REGION", "us-east-1"), ("SANDMAN_TABLE", OUTPUTS["TableName"]),
                            ("SANDMAN_KMS_KEY_ID", OUTPUTS["TeamKeysKeyArn"]), ("SANDMAN_TEAM_KEYS_WRAP", "kms"),
                            ("E2B_WEBHOOK_SECRET", SECRETS["webhook"]["webhookSecret"])]:
        assert f"  {variable}={value}\n" in registered, (variable, registered)
    assert any(c.startswith("smoke --stack sandman") and "AWS_REGION=us-east-1" in c for c in commands), calls
    teardown = next(c for c in commands if c.startswith("teardown"))
    assert f"--base-url {OUTPUTS['WebhookUrl']}" in teardown and f"SANDMAN_TABLE={OUTPUTS['TableName']}" in teardown
    aws_calls = [line for line in calls.splitlines() if line.startswith("aws ")]
    assert all(line.endswith("(region us-east-1)") for line in aws_calls), aws_calls
    order = [i for i, line in enumerate(aws_calls) for word in ("--no-deletion-protection-enabled", "delete-table", "schedule-key-deletion") if word in line]
    assert len(order) == 3 and order == sorted(order), "protection off, then the table, then the key"
