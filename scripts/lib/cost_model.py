"""Sandman's monthly AWS bill per 1,000 active projects, from measured capacity units, beside the
E2B compute that pausing saves for the same usage pattern.

Inputs: tests/figures/measured.json (written by `scripts/bench naive` and
`scripts/measure-binaries`); everything else is a stated assumption or a list price printed with
its date. Usage: python cost_model.py FIGURES.json [TEMPLATE.yaml]
"""

import json
import re
import sys

PRICES_DATE = "2026-11-27"
# AWS list prices, us-east-1 (aws.amazon.com/{lambda,api-gateway,dynamodb,secrets-manager,cloudwatch}/pricing).
AWS = {
    "lambda_arm64_gb_second": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    "http_api_request": 1.00 / 1e6,
    "dynamodb_write_unit": 0.625 / 1e6,  # on-demand, after the November 2024 price cut
    "dynamodb_read_unit": 0.125 / 1e6,
    "dynamodb_gb_month": 0.25,
    "secret_month": 0.40,
    "secrets_api_call": 0.05 / 10_000,
    "cloudwatch_metric_month": 0.30,
    "cloudwatch_alarm_month": 0.10,
    "cloudwatch_logs_gb_ingested": 0.50,
}
# E2B's per-second compute prices: $0.000014 per vCPU-second; RAM per GiB-second follows from the
# docs' example (8 vCPU + 4 GiB = $0.468/hour): (0.468 - 8 * 0.000014 * 3600) / 4 / 3600.
E2B_SOURCE = "e2b.dev/pricing and e2b.dev/docs/billing, read 2026-11-27"
E2B_VCPU_SECOND = 0.000014
E2B_GIB_SECOND = (0.468 - 8 * E2B_VCPU_SECOND * 3600) / 4 / 3600

# One E2B lifecycle webhook applied (one transaction: session, log line, dedupe mark), as
# `scripts/bench webhook` measures it.
WEBHOOK_TRANSITION = {"rcu": 1.0, "wcu": 8.0}

# The usage pattern (stated, not measured).
PATTERN = {
    "projects": 1000,
    "sessions_per_day": 2,
    "session_active_minutes": 60,
    "days_per_month": 22,
    "idle_timeout_minutes": 10,
    "heartbeat_every_seconds": 30,  # what the frontend sends while its user is active
    "status_every_seconds": 60,
    "sandbox_vcpus": 2,  # E2B's default template size
    "sandbox_gib": 0.5,
    # Without Sandman the app keeps a sandbox alive with a 1-hour E2B timeout after last use.
    "keepalive_minutes_without_pausing": 60,
}
# Stated assumptions about AWS (not measurable on DynamoDB Local).
DYNAMODB_CALL_MS = 8.0  # one DynamoDB round trip inside a region
LOG_BYTES_PER_INVOCATION = 600  # START/END/REPORT lines plus one JSON line
COLD_START_SHARE = 0.02  # share of API invocations that start a new instance
MONTH_HOURS = 730
SCHEDULED = {  # invocations per month
    "idle-enforcer": MONTH_HOURS * 30 + MONTH_HOURS * 6,  # every 2 minutes, reconcile every 10
    "snapshot-pruner": MONTH_HOURS,
}


def memory_sizes(template_path):
    """MemorySize per function from template.yaml (Globals and per function), in MB."""
    text = open(template_path, encoding="utf-8").read()
    default = int(re.search(r"Globals:.*?MemorySize:\s*(\d+)", text, re.S).group(1))
    sizes = {}
    for logical, name in [("ApiFunction", "api"), ("WebhookFunction", "webhook"),
                          ("IdleEnforcerFunction", "idle-enforcer"), ("SnapshotPrunerFunction", "snapshot-pruner")]:
        block = re.search(rf"\n  {logical}:\n(.*?)(?=\n  \w|\Z)", text, re.S)
        own = re.search(r"MemorySize:\s*(\d+)", block.group(1)) if block else None
        sizes[name] = int(own.group(1)) if own else default
    return sizes


def main():
    figures = json.load(open(sys.argv[1], encoding="utf-8"))
    template = sys.argv[2] if len(sys.argv) > 2 else "template.yaml"
    memory = memory_sizes(template)
    naive = figures["naive"]
    heartbeat = naive["heartbeat"]
    lifecycle = dict(naive["lifecycle"], webhookTransition=WEBHOOK_TRANSITION)
    binaries = figures.get("binaries", {})
    p = PATTERN

    active_hours = p["projects"] * p["sessions_per_day"] * p["session_active_minutes"] / 60 * p["days_per_month"]
    sessions = p["projects"] * p["sessions_per_day"] * p["days_per_month"]
    interval = next(row["after"]["intervalSeconds"] for row in naive["perProjectHour"]
                    if row["idleTimeoutMinutes"] == p["idle_timeout_minutes"])
    per_hour = {
        "heartbeat requests": 3600 / p["heartbeat_every_seconds"],
        "recorded heartbeats": 3600 / interval,
        "status requests": 3600 / p["status_every_seconds"],
    }
    heartbeats = per_hour["heartbeat requests"] * active_hours
    recorded = per_hour["recorded heartbeats"] * active_hours
    statuses = per_hour["status requests"] * active_hours
    api_requests = heartbeats + statuses + sessions  # plus one open per session
    webhooks = sessions * 2  # E2B reports each pause and each resume

    # DynamoDB units, measured (billed: at least 0.5 RCU per query).
    throttled_rcu = 0.5  # a heartbeat on an instance that has not seen the project reads the item
    reads = (recorded * heartbeat["rcu"] + (heartbeats - recorded) * throttled_rcu + statuses * 0.5
             + sessions * (lifecycle["resume"]["rcu"] + lifecycle["pause"]["rcu"])
             + webhooks * lifecycle["webhookTransition"]["rcu"])
    writes = (recorded * heartbeat["wcu"] + sessions * (lifecycle["resume"]["wcu"] + lifecycle["pause"]["wcu"])
              + webhooks * lifecycle["webhookTransition"]["wcu"])
    idle_tick = next(t for t in naive["ticks"] if t["idle"] == "0%")["sandman"]["rcuBilled"]
    reads += SCHEDULED["idle-enforcer"] * idle_tick + SCHEDULED["snapshot-pruner"] * 4 * 0.5
    storage_gb = p["projects"] * heartbeat["itemBytes"] * 3 / 1e9  # item, index entries, log lines

    def lambda_cost(invocations, ms, mb):
        return invocations * (AWS["lambda_request"] + (mb / 1024) * (ms / 1000) * AWS["lambda_arm64_gb_second"])

    cold_measured = "median_ms" in binaries.get("api", {})
    cold = binaries["api"]["median_ms"] if cold_measured else 50.0
    api_ms = 1 + DYNAMODB_CALL_MS * 1.2 + COLD_START_SHARE * cold
    tick_ms = 1 + DYNAMODB_CALL_MS * 2
    rows = [
        ("Lambda: API", lambda_cost(api_requests, api_ms, memory["api"]),
         f"{api_requests:,.0f} invocations x {api_ms:.0f} ms at {memory['api']} MB"),
        ("Lambda: webhook", lambda_cost(webhooks, 1 + DYNAMODB_CALL_MS * 2, memory["webhook"]),
         f"{webhooks:,.0f} events"),
        ("Lambda: enforcer, reconciler, pruner",
         lambda_cost(SCHEDULED["idle-enforcer"], tick_ms, memory["idle-enforcer"])
         + lambda_cost(SCHEDULED["snapshot-pruner"], tick_ms, memory["snapshot-pruner"]),
         f"{SCHEDULED['idle-enforcer'] + SCHEDULED['snapshot-pruner']:,} scheduled runs"),
        ("HTTP API requests", api_requests * AWS["http_api_request"], f"{api_requests:,.0f} requests"),
        ("DynamoDB reads", reads * AWS["dynamodb_read_unit"], f"{reads:,.0f} RRU"),
        ("DynamoDB writes", writes * AWS["dynamodb_write_unit"], f"{writes:,.0f} WRU"),
        ("DynamoDB storage", storage_gb * AWS["dynamodb_gb_month"], f"{storage_gb * 1000:.1f} MB"),
        ("Secrets Manager", AWS["secret_month"] + api_requests * COLD_START_SHARE * AWS["secrets_api_call"],
         "1 secret, one read per cold start"),
        ("CloudWatch logs", (api_requests + webhooks + sum(SCHEDULED.values())) * LOG_BYTES_PER_INVOCATION / 1e9
         * AWS["cloudwatch_logs_gb_ingested"], f"{LOG_BYTES_PER_INVOCATION} B per invocation"),
        ("CloudWatch metrics and alarms", 18 * AWS["cloudwatch_metric_month"] + 10 * AWS["cloudwatch_alarm_month"],
         "9 EMF metrics x 2 dimension sets, 10 alarms (fixed, not per project)"),
    ]
    total = sum(cost for _, cost, _ in rows)

    def e2b_hourly():
        return (p["sandbox_vcpus"] * E2B_VCPU_SECOND + p["sandbox_gib"] * E2B_GIB_SECOND) * 3600

    tick_minutes = 2
    with_sandman = p["session_active_minutes"] + p["idle_timeout_minutes"] + tick_minutes / 2
    without = p["session_active_minutes"] + p["keepalive_minutes_without_pausing"]
    saved_hours = sessions * (without - with_sandman) / 60

    print(f"Usage pattern (stated): {p['projects']:,} projects, {p['sessions_per_day']} sessions a day of "
          f"{p['session_active_minutes']} active minutes, {p['days_per_month']} days a month "
          f"({active_hours:,.0f} active project-hours); idle timeout {p['idle_timeout_minutes']} min; the frontend "
          f"sends a heartbeat every {p['heartbeat_every_seconds']} s and polls status every {p['status_every_seconds']} s.")
    print("Per active project-hour: " + ", ".join(f"{v:.0f} {k}" for k, v in per_hour.items())
          + f" (heartbeat written every {interval} s).")
    print(f"Measured: recorded heartbeat {heartbeat['rcu']} RCU + {heartbeat['wcu']} WCU; idle tick "
          f"{idle_tick} RCU billed; pause {lifecycle['pause']['rcu']} RCU + {lifecycle['pause']['wcu']} WCU; "
          f"resume {lifecycle['resume']['rcu']} RCU + {lifecycle['resume']['wcu']} WCU; webhook transition "
          f"{lifecycle['webhookTransition']['rcu']} RCU + {lifecycle['webhookTransition']['wcu']} WCU; "
          + (f"API cold start {cold:.0f} ms." if cold_measured else "API cold start not measured yet (assumed 50 ms)."))
    print(f"Assumed: DynamoDB round trip {DYNAMODB_CALL_MS:.0f} ms, {COLD_START_SHARE:.0%} cold starts, "
          f"{LOG_BYTES_PER_INVOCATION} B of logs per invocation.")
    print(f"\nSandman's monthly AWS bill per {p['projects']:,} active projects (list prices, us-east-1, {PRICES_DATE}):")
    for name, cost, how in rows:
        print(f"    {name:<38} ${cost:9.2f}   {how}")
    print(f"    {'total':<38} ${total:9.2f}")
    print(f"\nE2B compute saved by pausing ({p['sandbox_vcpus']} vCPU, {p['sandbox_gib']} GiB at "
          f"${E2B_VCPU_SECOND}/vCPU-s + ${E2B_GIB_SECOND:.7f}/GiB-s = ${e2b_hourly():.4f}/hour; {E2B_SOURCE}):")
    print(f"    without pausing a sandbox runs {without:.0f} min a session (E2B timeout 1 h after last use); "
          f"with Sandman {with_sandman:.0f} min (idle timeout + half a tick)")
    print(f"    saved {saved_hours:,.0f} sandbox-hours = ${saved_hours * e2b_hourly():,.2f} a month, "
          f"{saved_hours * e2b_hourly() / total:,.0f}x Sandman's bill")


if __name__ == "__main__":
    main()
