# shellcheck shell=bash
# Shared helpers for Sandman's scripts: repo paths, readable logging, exit cleanups.
# Source it; it does not change shell options of the caller.

SANDMAN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SANDMAN_CACHE="${SANDMAN_CACHE:-$SANDMAN_ROOT/.cache}"
SANDMAN_LOGS="${SANDMAN_LOGS:-$SANDMAN_CACHE/logs}"
export SANDMAN_ROOT SANDMAN_CACHE SANDMAN_LOGS
# Every script writes its logs here, from its first step on a bare machine.
mkdir -p "$SANDMAN_LOGS"

# True under CI. One reading of `CI` everywhere (the Python tests read it the same way):
# set and not empty, "0" or "false".
is_ci() {
  local ci="${CI:-}"
  ci="${ci,,}"
  [[ -n $ci && $ci != 0 && $ci != false ]]
}

if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then
  _c_bold=$'\e[1m' _c_red=$'\e[31m' _c_green=$'\e[32m' _c_yellow=$'\e[33m' _c_off=$'\e[0m'
else
  _c_bold='' _c_red='' _c_green='' _c_yellow='' _c_off=''
fi

log_step() { printf '\n%s==> %s%s\n' "$_c_bold" "$*" "$_c_off"; }
log_info() { printf '    %s\n' "$*"; }
log_ok() { printf '    %sok%s %s\n' "$_c_green" "$_c_off" "$*"; }
log_warn() { printf '    %swarning:%s %s\n' "$_c_yellow" "$_c_off" "$*" >&2; }
log_error() { printf '%serror:%s %s\n' "$_c_red" "$_c_off" "$*" >&2; }
die() {
  log_error "$*"
  exit 1
}

# Exit cleanups: every registered command runs once, last registered first,
# on normal exit, on error and on Ctrl-C / SIGTERM.
_sandman_cleanups=()
_sandman_cleaned=0
on_exit() { _sandman_cleanups+=("$1"); }
_sandman_run_cleanups() {
  [[ $_sandman_cleaned == 1 ]] && return 0
  _sandman_cleaned=1
  local i
  for ((i = ${#_sandman_cleanups[@]} - 1; i >= 0; i--)); do
    eval "${_sandman_cleanups[i]}" || true
  done
}
trap '_sandman_run_cleanups' EXIT
# With `set -eE`, say which command stopped the script instead of exiting silently.
trap 'log_error "stopped: \`$BASH_COMMAND\` failed (exit $?) at ${BASH_SOURCE[0]:-$0}:$LINENO"' ERR
trap '_sandman_run_cleanups; exit 130' INT
trap '_sandman_run_cleanups; exit 143' TERM

# Prints a free TCP port on 127.0.0.1 (the kernel picks it).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# The directory cargo builds into (honours CARGO_TARGET_DIR and .cargo/config).
cargo_target_dir() {
  if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    printf '%s\n' "$CARGO_TARGET_DIR"
  else
    (cd "$SANDMAN_ROOT" && cargo metadata --format-version 1 --no-deps |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  fi
}

# Runs a command with its output going to a log file; prints the log's tail if it fails.
run_logged() {
  local log="$1"
  shift
  mkdir -p "$(dirname "$log")"
  if "$@" >"$log" 2>&1; then
    return 0
  else
    local rc=$?
    log_error "'$*' failed (exit $rc); last lines of $log:"
    tail -n 40 "$log" >&2
    return "$rc"
  fi
}
