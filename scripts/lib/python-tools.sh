# shellcheck shell=bash
# The project's Python venv ($SANDMAN_CACHE/venv): SAM CLI, cargo-lambda (with zig), pytest,
# and the E2B emulator's Python test requirements. Source scripts/lib/common.sh first.
#
#   python_tools_install   # idempotent: reinstalls only when a requirements file changed
#   python_tools_activate  # puts the venv first on PATH

SANDMAN_VENV="$SANDMAN_CACHE/venv"
_PYTHON_TOOLS_FILES=(
  "$SANDMAN_ROOT/scripts/python-tools.txt"
  "$SANDMAN_ROOT/scripts/python-tools.lock"
  "$SANDMAN_ROOT/infra/e2b-emulator/python/requirements.txt"
)

_python_tools_fingerprint() {
  {
    python3 --version 2>&1
    local f
    for f in "${_PYTHON_TOOLS_FILES[@]}"; do
      if [[ -f "$f" ]]; then
        echo "$f"
        cat "$f"
      fi
    done
  } | sha256sum | cut -d' ' -f1
}

python_tools_activate() {
  export PATH="$SANDMAN_VENV/bin:$PATH"
  export VIRTUAL_ENV="$SANDMAN_VENV"
  export SAM_CLI_TELEMETRY=0
}

python_tools_install() {
  local stamp="$SANDMAN_VENV/.sandman-fingerprint" want
  want="$(_python_tools_fingerprint)"
  if [[ -x "$SANDMAN_VENV/bin/python" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
    log_ok "Python tools already installed in $SANDMAN_VENV"
    return 0
  fi
  command -v python3 >/dev/null || die "python3 (3.11+) is needed for the SAM CLI, cargo-lambda and pytest"
  if [[ ! -x "$SANDMAN_VENV/bin/python" ]]; then
    log_info "creating venv $SANDMAN_VENV"
    run_logged "$SANDMAN_LOGS/venv.log" python3 -m venv "$SANDMAN_VENV" || die "python3 -m venv failed"
  fi
  local pip=("$SANDMAN_VENV/bin/python" -m pip --disable-pip-version-check --no-input)
  local constraints=()
  [[ -f "$SANDMAN_ROOT/scripts/python-tools.lock" ]] && constraints=(-c "$SANDMAN_ROOT/scripts/python-tools.lock")
  log_info "pip install -r scripts/python-tools.txt (SAM CLI, cargo-lambda, pytest; a minute or two when cold)"
  run_logged "$SANDMAN_LOGS/pip-tools.log" \
    "${pip[@]}" install --progress-bar off -r "$SANDMAN_ROOT/scripts/python-tools.txt" "${constraints[@]}" ||
    die "installing the Python tools failed (see $SANDMAN_LOGS/pip-tools.log)"
  local emulator_reqs="$SANDMAN_ROOT/infra/e2b-emulator/python/requirements.txt"
  if [[ -f "$emulator_reqs" ]]; then
    log_info "pip install -r infra/e2b-emulator/python/requirements.txt"
    run_logged "$SANDMAN_LOGS/pip-emulator.log" \
      "${pip[@]}" install --progress-bar off -r "$emulator_reqs" ||
      die "installing the emulator's Python test requirements failed (see $SANDMAN_LOGS/pip-emulator.log)"
  fi
  printf '%s\n' "$want" >"$stamp"
  log_ok "Python tools installed in $SANDMAN_VENV"
}

# Only what a deploy needs: the SAM CLI and cargo-lambda (pinned as in python-tools.txt and the
# lock); no pytest, no emulator requirements. `scripts/setup --deploy-only` calls it.
python_tools_install_deploy() {
  command -v python3 >/dev/null || die "python3 (3.11+) is needed for the SAM CLI and cargo-lambda"
  [[ -x "$SANDMAN_VENV/bin/python" ]] ||
    run_logged "$SANDMAN_LOGS/venv.log" python3 -m venv "$SANDMAN_VENV" || die "python3 -m venv failed"
  local pins
  mapfile -t pins < <(grep -E '^(aws-sam-cli|cargo-lambda)==' "$SANDMAN_ROOT/scripts/python-tools.txt")
  log_info "pip install ${pins[*]} (a minute or two when cold)"
  run_logged "$SANDMAN_LOGS/pip-deploy.log" \
    "$SANDMAN_VENV/bin/python" -m pip --disable-pip-version-check --no-input install --progress-bar off \
    "${pins[@]}" -c "$SANDMAN_ROOT/scripts/python-tools.lock" ||
    die "installing the SAM CLI and cargo-lambda failed (see $SANDMAN_LOGS/pip-deploy.log)"
  log_ok "sam and cargo-lambda installed in $SANDMAN_VENV/bin"
}
