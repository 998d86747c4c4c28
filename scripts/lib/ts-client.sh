# shellcheck shell=bash
# The TypeScript client (clients/typescript): its npm dependencies (from package-lock.json, into
# the package's node_modules) and Debian's chromium for the dashboard's browser test.
# Expects common.sh to be sourced first.

TS_CLIENT_DIR="$SANDMAN_ROOT/clients/typescript"

ts_client_install() {
  command -v npm >/dev/null || die "npm is needed for clients/typescript (Node.js 20+)"
  local stamp="$TS_CLIENT_DIR/node_modules/.sandman-lock"
  if ! cmp -s "$TS_CLIENT_DIR/package-lock.json" "$stamp" 2>/dev/null; then
    log_info "installing clients/typescript's npm dependencies (npm ci)"
    (cd "$TS_CLIENT_DIR" && run_logged "$SANDMAN_LOGS/npm-ts-client.log" npm ci --no-audit --no-fund --loglevel=error) ||
      die "npm ci in clients/typescript failed (log: $SANDMAN_LOGS/npm-ts-client.log)"
    cp "$TS_CLIENT_DIR/package-lock.json" "$stamp"
  fi
  if ! command -v chromium >/dev/null; then
    command -v apt-get >/dev/null || die "chromium is missing and there is no apt-get to install it"
    log_info "installing Debian's chromium (the dashboard's browser test)"
    run_logged "$SANDMAN_LOGS/apt-chromium.log" apt-get update ||
      die "apt-get update failed (log: $SANDMAN_LOGS/apt-chromium.log)"
    DEBIAN_FRONTEND=noninteractive run_logged "$SANDMAN_LOGS/apt-chromium.log" \
      apt-get install -y --no-install-recommends chromium ||
      die "apt-get install chromium failed (log: $SANDMAN_LOGS/apt-chromium.log)"
  fi
}
