# shellcheck shell=bash
# Cargo subcommands `make test` needs: cargo-nextest (per-test time limits, JUnit counts).
# Source scripts/lib/common.sh first.
#
#   cargo_tools_install    # idempotent: uses a cargo-nextest already on PATH, else builds the pinned
#                          # one from crates.io into $SANDMAN_CACHE/cargo-tools (a few minutes, once)
#   cargo_tools_activate   # puts $SANDMAN_CACHE/cargo-tools/bin first on PATH

CARGO_NEXTEST_VERSION="0.9.143"
SANDMAN_CARGO_TOOLS="$SANDMAN_CACHE/cargo-tools"

cargo_tools_activate() {
  export PATH="$SANDMAN_CARGO_TOOLS/bin:$PATH"
}

cargo_tools_install() {
  cargo_tools_activate
  local found
  if found="$(cargo nextest --version 2>/dev/null | head -n1)" && [[ -n $found ]]; then
    log_ok "$found"
    return 0
  fi
  log_info "building cargo-nextest $CARGO_NEXTEST_VERSION into $SANDMAN_CARGO_TOOLS (cargo install --locked; a few minutes, once)"
  mkdir -p "$SANDMAN_CARGO_TOOLS"
  run_logged "$SANDMAN_LOGS/cargo-install-nextest.log" \
    cargo install cargo-nextest --version "$CARGO_NEXTEST_VERSION" --locked --root "$SANDMAN_CARGO_TOOLS" ||
    die "cargo install cargo-nextest failed (log: $SANDMAN_LOGS/cargo-install-nextest.log)"
  found="$(cargo nextest --version 2>/dev/null | head -n1)" ||
    die "cargo-nextest was installed into $SANDMAN_CARGO_TOOLS but \`cargo nextest\` does not run"
  log_ok "$found"
}
