"""IAM policy evaluation, the part of it Sandman's roles use: identity policies with Allow and
Deny statements, Action/NotAction, Resource/NotResource with `*` and `?` wildcards, and the
condition operators StringEquals, StringLike, StringNotEquals, StringNotLike, ArnEquals, ArnLike,
Bool and Null, with the ForAllValues: / ForAnyValue: set prefixes and the IfExists suffix.

As IAM decides: an explicit Deny wins, else an Allow that matches, else the request is denied.
A condition on a key the request does not carry is false, except that ForAllValues: over a
missing or empty key is true (IAM's own, well-known trap) and ...IfExists is true.
"""

from dataclasses import dataclass, field
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class Request:
    action: str  # e.g. "dynamodb:Query"
    resource: str  # an ARN
    context: dict = field(default_factory=dict, compare=False, hash=False)  # key -> list of strings


def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def wildcard(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    # fnmatch's [...] classes are not IAM's: escape them so only * and ? are special.
    pattern = pattern.replace("[", "[[]")
    if not case_sensitive:
        pattern, value = pattern.lower(), value.lower()
    return fnmatchcase(value, pattern)


def matches_action(statement: dict, action: str) -> bool:
    if "NotAction" in statement:
        return not any(wildcard(p, action, False) for p in as_list(statement["NotAction"]))
    return any(wildcard(p, action, False) for p in as_list(statement.get("Action")))


def matches_resource(statement: dict, resource: str) -> bool:
    if "NotResource" in statement:
        return not any(wildcard(p, resource) for p in as_list(statement["NotResource"]))
    return any(wildcard(p, resource) for p in as_list(statement.get("Resource")))


def _compare(operator: str, wanted: str, actual: str) -> bool:
    base = operator.removesuffix("IfExists")
    if base in ("StringEquals", "ArnEquals"):
        return actual == wanted
    if base in ("StringLike", "ArnLike"):
        return wildcard(wanted, actual)
    if base == "StringNotEquals":
        return actual != wanted
    if base == "StringNotLike":
        return not wildcard(wanted, actual)
    if base == "Bool":
        return actual.lower() == wanted.lower()
    raise ValueError(f"condition operator {operator} is not evaluated here")


def condition_holds(operator: str, key: str, wanted, context: dict) -> bool:
    wanted = [str(w) for w in as_list(wanted)]
    present = key in context and context[key] is not None
    if operator == "Null":
        return (not present) == (wanted[0].lower() == "true")
    prefix, _, base = operator.rpartition(":")
    values = [str(v) for v in as_list(context.get(key))]
    negated = base.removesuffix("IfExists") in ("StringNotEquals", "StringNotLike")
    one = (lambda v: all(_compare(base, w, v) for w in wanted)) if negated else (
        lambda v: any(_compare(base, w, v) for w in wanted)
    )
    if prefix == "ForAllValues":
        return all(one(v) for v in values)
    if prefix == "ForAnyValue":
        return any(one(v) for v in values)
    if not present:
        return base.endswith("IfExists")
    return all(one(v) for v in values)


def conditions_hold(statement: dict, context: dict) -> bool:
    for operator, keys in statement.get("Condition", {}).items():
        for key, wanted in keys.items():
            if not condition_holds(operator, key, wanted, context):
                return False
    return True


def statement_applies(statement: dict, request: Request) -> bool:
    return (
        matches_action(statement, request.action)
        and matches_resource(statement, request.resource)
        and conditions_hold(statement, request.context)
    )


def decide(statements: list, request: Request) -> str:
    """"allow", "deny" (explicit) or "implicit-deny"."""
    applying = [s for s in statements if statement_applies(s, request)]
    if any(s.get("Effect") == "Deny" for s in applying):
        return "deny"
    if any(s.get("Effect") == "Allow" for s in applying):
        return "allow"
    return "implicit-deny"
