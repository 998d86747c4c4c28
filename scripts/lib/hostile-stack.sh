# shellcheck shell=bash
# The local stack (`sandman-local dev`) as the hostile-input suite and schemathesis attack it:
# two Sandman teams on two E2B emulator accounts (team-b brings its own key), HS256 tokens with
# an issuer and an audience, fresh random secrets (the suite greps the log for them), a table of
# its own over the DynamoDB Local already running. Source scripts/lib/common.sh first.
#
#   hostile_stack_start LOG [NAME=VALUE...]
#                             # exports SANDMAN_API_URL, SANDMAN_WEBHOOK_URL, E2B_EMULATOR_URL,
#                             # SANDMAN_TABLE, HOSTILE_*; the stack's pid in HOSTILE_STACK_PID;
#                             # NAME=VALUE pairs go to the stack's environment
#   hostile_stack_stop

_hostile_random() { python3 -c 'import secrets; print(secrets.token_urlsafe(36))'; }

hostile_stack_start() {
  local log="$1" api_port webhook_port emulator_port
  shift
  cargo build --quiet -p sandman-local --bin sandman-local || return 1
  api_port="$(free_port)" webhook_port="$(free_port)" emulator_port="$(free_port)"
  export SANDMAN_TABLE="sandman-hostile-$RANDOM$RANDOM" HOSTILE_STACK_LOG="$log"
  export SANDMAN_API_URL="http://127.0.0.1:$api_port" SANDMAN_WEBHOOK_URL="http://127.0.0.1:$webhook_port"
  export E2B_EMULATOR_URL="http://127.0.0.1:$emulator_port"
  export HOSTILE_JWT_ISSUER="https://issuer.hostile.test" HOSTILE_JWT_AUDIENCE="sandman-hostile"
  HOSTILE_JWT_SECRET="$(_hostile_random)" HOSTILE_WEBHOOK_SECRET="$(_hostile_random)"
  HOSTILE_E2B_KEY_A="e2b_$(_hostile_random)" HOSTILE_E2B_KEY_B="e2b_$(_hostile_random)"
  export HOSTILE_JWT_SECRET HOSTILE_WEBHOOK_SECRET HOSTILE_E2B_KEY_A HOSTILE_E2B_KEY_B
  mkdir -p "$(dirname "$log")"
  env -u E2B_API_KEY JWT_HS256=true JWT_HS256_SECRET="$HOSTILE_JWT_SECRET" \
    JWT_ISSUER="$HOSTILE_JWT_ISSUER" JWT_AUDIENCE="$HOSTILE_JWT_AUDIENCE" \
    E2B_WEBHOOK_SECRETS="$HOSTILE_WEBHOOK_SECRET" \
    E2B_EMULATOR_TEAMS="e2b-team-a:$HOSTILE_E2B_KEY_A,e2b-team-b:$HOSTILE_E2B_KEY_B" \
    E2B_TEAM_API_KEYS="{\"team-b\":\"$HOSTILE_E2B_KEY_B\"}" \
    SANDMAN_API_PORT="$api_port" SANDMAN_WEBHOOK_PORT="$webhook_port" E2B_EMULATOR_PORT="$emulator_port" \
    "$@" "$(cargo_target_dir)/debug/sandman-local" dev >"$log" 2>&1 &
  HOSTILE_STACK_PID=$!
  local _
  for _ in $(seq 1 100); do
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
      "$SANDMAN_API_URL/healthz" 2>/dev/null && return 0
    kill -0 "$HOSTILE_STACK_PID" 2>/dev/null || break
    sleep 0.2
  done
  log_error "the local stack did not come up (see $log)"
  tail -n 20 "$log" >&2
  hostile_stack_stop
  return 1
}

hostile_stack_stop() {
  [[ -n ${HOSTILE_STACK_PID:-} ]] || return 0
  kill -TERM "$HOSTILE_STACK_PID" 2>/dev/null
  wait "$HOSTILE_STACK_PID" 2>/dev/null || true
  HOSTILE_STACK_PID=""
}
