"""The IAM check: the deployed stack's roles against the AWS calls the code makes.

The tests and the soak record every AWS call each function makes (`SANDMAN_RECORD_AWS_CALLS`,
shared/src/aws/record.rs): one JSON line per distinct call, labelled with the function. This reads
template.yaml as CloudFormation and IAM would (the SAM transform, then every intrinsic function
resolved to the ARNs the stack's resources get), and fails when
  - a recorded call is not allowed by that function's role (it would be AccessDenied in AWS), or
  - a grant of a role was used by no recorded call (least privilege: nothing no test used), or
  - a function made no recorded call at all (a check that judged nothing).
Besides the recorded calls, a role is held to what AWS itself does with it, read from the
template: an event source mapping polls its stream or queue, an on-failure destination is sent to.

Usage: iam_check.py [--template template.yaml] [--parameter Name=Value ...] CALLS.jsonl ...
"""

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import iam_eval  # noqa: E402
from iam_eval import Request, as_list, decide, wildcard  # noqa: E402

ACCOUNT, REGION, STACK = "123456789012", "us-east-1", "sandman"
NO_VALUE = object()
# Managed policies a role may carry, and what uses them.
MANAGED = {
    "AWSLambdaBasicExecutionRole": "the Lambda runtime writes the function's log lines (CloudWatch Logs)",
}
# What a Lambda event source mapping calls with the function's role, by source (AWS's documented
# execution-role permissions for DynamoDB streams and SQS).
POLLER = {
    "stream": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"],
    "sqs": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
}
# A transaction's items (and batch calls) are authorised as these actions.
PARTS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
SQS_BATCH = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
             "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}


class Stack:
    """The expanded template with every intrinsic resolved as it would be in account ACCOUNT."""

    def __init__(self, expanded: dict, parameters: dict):
        self.resources = expanded["Resources"]
        self.conditions = expanded.get("Conditions", {})
        self.parameters = {
            name: str(spec.get("Default", "")) for name, spec in expanded.get("Parameters", {}).items()
        }
        self.parameters.update(parameters)

    def type_of(self, logical: str) -> str:
        return self.resources[logical]["Type"]

    def arn(self, logical: str) -> str:
        name = f"{STACK}-{logical}"
        kind = self.type_of(logical)
        return {
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::KMS::Key": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{name}",
            "AWS::SecretsManager::Secret": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf",
            "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::Events::Rule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
        }.get(kind, f"arn:aws:unknown:{REGION}:{ACCOUNT}:{name}")

    def ref(self, name: str):
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": STACK,
                  "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com", "AWS::NoValue": NO_VALUE}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        kind = self.type_of(name)
        if kind in ("AWS::SecretsManager::Secret", "AWS::KMS::Key"):
            return self.arn(name) if kind.endswith("Secret") else f"{STACK}-{name}"
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{STACK}-{name}"
        return f"{STACK}-{name}"

    def getatt(self, logical: str, attribute: str):
        if attribute == "Arn":
            return self.arn(logical)
        if attribute == "StreamArn":
            return f"{self.arn(logical)}/stream/2026-01-01T00:00:00.000"
        if attribute == "QueueName":
            return f"{STACK}-{logical}"
        return f"{STACK}-{logical}-{attribute}"

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name]))

    def resolve(self, value):
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.getatt(logical, attribute)
            if key == "Fn::Sub":
                return self.substitute(arg)
            if key == "Fn::Join":
                return arg[0].join(str(v) for v in self.resolve(arg[1]))
            if key == "Fn::Split":
                return str(self.resolve(arg[1])).split(arg[0])
            if key == "Fn::Select":
                return self.resolve(arg[1])[int(self.resolve(arg[0]))]
            if key == "Fn::If":
                return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return str(self.resolve(arg[0])) == str(self.resolve(arg[1]))
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(a) for a in arg)
            if key == "Fn::Or":
                return any(self.resolve(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def substitute(self, arg) -> str:
        text, names = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def one(match):
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in names:
                return str(self.resolve(names[name]))
            if "." in name:
                return str(self.getatt(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def functions(self) -> dict:
        """binary -> {"logical", "statements", "managed"}"""
        found = {}
        for logical, resource in self.resources.items():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary", logical)
            role_ref = resource["Properties"]["Role"]
            role = self.resources[role_ref["Fn::GetAtt"][0]]["Properties"]
            statements = []
            for policy in self.resolve(role.get("Policies", [])):
                statements.extend(as_list(policy["PolicyDocument"]["Statement"]))
            managed = [str(arn).rsplit("/", 1)[-1] for arn in self.resolve(role.get("ManagedPolicyArns", []))]
            found[binary] = {"logical": logical, "statements": statements, "managed": managed}
        return found

    def service_requests(self, function_logical: str) -> list:
        """What AWS does with the function's role: its event sources polled, failures sent on."""
        requests = []
        physical = f"{STACK}-{function_logical}"
        for logical, resource in self.resources.items():
            properties = self.resolve(resource.get("Properties", {}))
            if properties.get("FunctionName") != physical:
                continue
            if resource["Type"] == "AWS::Lambda::EventSourceMapping":
                source = properties["EventSourceArn"]
                kind = "stream" if "/stream/" in source else "sqs" if ":sqs:" in source else None
                for action in POLLER.get(kind, []):
                    requests.append((f"{logical} polls its source", Request(action, source)))
            if resource["Type"] in ("AWS::Lambda::EventSourceMapping", "AWS::Lambda::EventInvokeConfig"):
                for outcome, target in properties.get("DestinationConfig", {}).items():
                    destination = target.get("Destination", "")
                    if ":sqs:" in destination:
                        requests.append((f"{logical} {outcome} destination", Request("sqs:SendMessage", destination)))
        return requests

    def logical_named(self, identifier: str, kind: str) -> str:
        """The resource a recorded call names: tests name them `sandman-<LogicalId>`."""
        if kind == "AWS::DynamoDB::Table":
            tables = [l for l, r in self.resources.items() if r["Type"] == kind]
            if len(tables) == 1:
                return tables[0]
        for name in reversed(re.findall(rf"{STACK}-([A-Za-z0-9]+)", identifier or "")):
            if name in self.resources and self.type_of(name) == kind:
                return name
        candidates = [l for l, r in self.resources.items() if r["Type"] == kind]
        if identifier is None and len(candidates) == 1:
            return candidates[0]
        raise LookupError(f"no {kind} in the template for {identifier!r}")

    def hash_key(self, table: str, index) -> str:
        properties = self.resources[table]["Properties"]
        schema = properties["KeySchema"]
        if index:
            schema = next(i["KeySchema"] for i in properties["GlobalSecondaryIndexes"] if i["IndexName"] == index)
        return next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")

    def request(self, call: dict) -> Request:
        service, operation = call["service"], call["operation"]
        if service == "dynamodb":
            table = self.logical_named(call.get("table"), "AWS::DynamoDB::Table")
            index = call.get("index")
            resource = self.arn(table) + (f"/index/{index}" if index else "")
            values = call.get("key") or call.get("keyCondition") or {}
            leading = values.get(self.hash_key(table, index))
            action = PARTS[call["part"]] if "part" in call else operation
            context = {"dynamodb:LeadingKeys": [leading]} if leading is not None else {}
            return Request(f"dynamodb:{action}", resource, context)
        if service == "kms":
            key = self.logical_named(call.get("key"), "AWS::KMS::Key")
            keys = call.get("encryptionContext", [])
            context = {"kms:EncryptionContextKeys": keys, **{f"kms:EncryptionContext:{k}": ["(a value)"] for k in keys}}
            return Request(f"kms:{operation}", self.arn(key), context)
        if service == "secretsmanager":
            return Request(f"secretsmanager:{operation}", self.arn(self.logical_named(call.get("secret"), "AWS::SecretsManager::Secret")))
        if service == "sqs":
            queue = self.logical_named(call.get("queue"), "AWS::SQS::Queue")
            return Request(f"sqs:{SQS_BATCH.get(operation, operation)}", self.arn(queue))
        raise LookupError(f"a {service} call is not checked here: {call}")


def read_calls(paths) -> dict:
    """function -> {call line (canonical JSON)}"""
    calls = defaultdict(set)
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                call = json.loads(line)
                calls[call.pop("function")].add(json.dumps(call, sort_keys=True))
    return calls


def leading_patterns(statement: dict) -> list:
    return [
        pattern
        for operator, keys in statement.get("Condition", {}).items()
        for key, patterns in keys.items()
        if key == "dynamodb:LeadingKeys"
        for pattern in as_list(patterns)
    ]


def check(stack: Stack, calls: dict) -> tuple:
    """(problems, lines of the report)"""
    problems, report = [], []
    functions = stack.functions()
    for unknown in sorted(set(calls) - set(functions)):
        problems.append(f"{unknown}: recorded calls, but the template has no function with that binary")
    for binary, function in sorted(functions.items()):
        statements = function["statements"]
        requests = []
        for line in sorted(calls.get(binary, ())):
            call = json.loads(line)
            try:
                requests.append((line, stack.request(call)))
            except (LookupError, KeyError) as err:
                problems.append(f"{binary}: cannot read the recorded call {line}: {err}")
        recorded = len(requests)
        requests += stack.service_requests(function["logical"])
        if recorded == 0:
            problems.append(f"{binary}: no recorded call (nothing was judged for this function)")
        denied = 0
        for why, request in requests:
            decision = decide(statements, request)
            if decision != "allow":
                denied += 1
                problems.append(f"{binary}: {request.action} on {request.resource} {request.context or ''} "
                                f"is {decision} by {function['logical']}'s role (from {why})")
        unused = 0
        for number, statement in enumerate(statements):
            if statement.get("Effect") != "Allow":
                continue
            if "NotAction" in statement or "NotResource" in statement:
                problems.append(f"{binary}: statement {number} uses NotAction/NotResource, which this check cannot hold to use")
                continue
            applying = [r for _, r in requests if iam_eval.statement_applies(statement, r)]
            for action in as_list(statement["Action"]):
                for resource in as_list(statement["Resource"]):
                    if not any(wildcard(action, r.action, False) and wildcard(resource, r.resource) for r in applying):
                        unused += 1
                        problems.append(f"{binary}: {function['logical']}'s role grants {action} on {resource}, "
                                        f"which no recorded call used")
            for pattern in leading_patterns(statement):
                if not any(wildcard(pattern, key) for r in applying for key in r.context.get("dynamodb:LeadingKeys", [])):
                    unused += 1
                    problems.append(f"{binary}: {function['logical']}'s role allows partition keys {pattern!r}, "
                                    f"which no recorded call used")
        for managed in function["managed"]:
            if managed not in MANAGED:
                problems.append(f"{binary}: managed policy {managed} is not checked here")
        report.append(f"{binary:16} {recorded:4} recorded calls + {len(requests) - recorded} by AWS itself, "
                      f"{len(statements)} statements: {denied} denied, {unused} grants unused"
                      + "".join(f"; {m}: {MANAGED.get(m, 'unchecked')}" for m in function["managed"]))
    return problems, report


def main(argv) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("calls", nargs="+", help="files of recorded calls (SANDMAN_RECORD_AWS_CALLS)")
    parser.add_argument("--template", default=str(Path(__file__).resolve().parents[2] / "template.yaml"))
    parser.add_argument("--parameter", action="append", default=[], help="Name=Value, as the deployer answers")
    args = parser.parse_args(argv)
    import sam_translate

    parameters = dict(p.split("=", 1) for p in args.parameter)
    stack = Stack(sam_translate.expand(Path(args.template).read_text(encoding="utf-8"), parameters), parameters)
    problems, report = check(stack, read_calls(args.calls))
    print("\n".join(report))
    if problems:
        print(f"\n{len(problems)} problem(s) with the roles in {args.template}:", file=sys.stderr)
        print("\n".join(f"  - {p}" for p in problems), file=sys.stderr)
        return 1
    print(f"every recorded call is allowed and every grant was used ({args.template})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
