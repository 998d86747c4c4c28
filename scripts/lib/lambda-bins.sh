# shellcheck shell=bash
# The Lambda functions: every package under functions/ and its binaries (template.yaml's
# BuildProperties name the binaries). Read from cargo metadata, so a new function crate is built,
# size-checked and measured without editing a list here.
SANDMAN_LAMBDA_PACKAGES=()
SANDMAN_LAMBDA_BINS=()
while read -r package bin; do
  [[ " ${SANDMAN_LAMBDA_PACKAGES[*]} " == *" $package "* ]] || SANDMAN_LAMBDA_PACKAGES+=("$package")
  SANDMAN_LAMBDA_BINS+=("$bin")
done < <(cd "$SANDMAN_ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c '
import json, os, sys
meta = json.load(sys.stdin)
functions = os.path.join(meta["workspace_root"], "functions") + os.sep
for package in sorted(meta["packages"], key=lambda p: p["manifest_path"]):
    if package["manifest_path"].startswith(functions):
        for target in package["targets"]:
            if "bin" in target["kind"]:
                print(package["name"], target["name"])
')
[[ ${#SANDMAN_LAMBDA_BINS[@]} -gt 0 ]] || die "no function binaries found under functions/ (cargo metadata failed?)"

# The deployed size limit per binary, stripped: 6 MB in SI units (6,000,000 bytes = 5.72 MiB),
# the stricter reading of "6 MB".
SANDMAN_BINARY_LIMIT_BYTES="${SANDMAN_BINARY_LIMIT_BYTES:-6000000}"

# Cross-builds every function for Lambda's arm64 (Graviton) runtime into <target>/lambda/<bin>/bootstrap.
# By package: only the functions' own features are unified, never a dev-only member's (the root's
# default-members does the same for `sam build`, which runs `cargo lambda build --bin <bin>`).
# Extra arguments go to cargo lambda build (e.g. --quiet).
build_lambda_arm64() {
  local args=("$@") package
  for package in "${SANDMAN_LAMBDA_PACKAGES[@]}"; do args+=(--package "$package"); done
  (cd "$SANDMAN_ROOT" && cargo lambda build --release --arm64 "${args[@]}")
}

# Host-architecture builds of every function for the start-up and memory benchmarks.
# SANDMAN_HOST_PROFILE: bench (default: the release settings with thin LTO, as the other
# benchmarks use) or dev (a quick debug build; its figures are upper bounds).
build_lambda_host() {
  local args=("$@") package
  for package in "${SANDMAN_LAMBDA_PACKAGES[@]}"; do args+=(--package "$package"); done
  (cd "$SANDMAN_ROOT" && cargo build --profile "${SANDMAN_HOST_PROFILE:-bench}" "${args[@]}")
}

# Where build_lambda_host puts the binaries (cargo writes the bench profile to release/).
lambda_host_dir() {
  case "${SANDMAN_HOST_PROFILE:-bench}" in
    dev) echo "$(cargo_target_dir)/debug" ;;
    bench | release) echo "$(cargo_target_dir)/release" ;;
    *) echo "$(cargo_target_dir)/${SANDMAN_HOST_PROFILE}" ;;
  esac
}

# Fails unless every arm64 bootstrap exists, is stripped, and is at most SANDMAN_BINARY_LIMIT_BYTES.
check_lambda_sizes() {
  local target bin path bytes limit failed=0
  target="$(cargo_target_dir)"
  for bin in "${SANDMAN_LAMBDA_BINS[@]}"; do
    path="$target/lambda/$bin/bootstrap"
    if [[ ! -f $path ]]; then
      log_error "missing $path"
      failed=1
      continue
    fi
    bytes="$(stat -c %s "$path")"
    limit="$SANDMAN_BINARY_LIMIT_BYTES"
    if grep -q -a -F ".symtab" "$path"; then
      log_error "$bin: $path is not stripped ($bytes bytes)"
      failed=1
    elif ((bytes > limit)); then
      log_error "$bin: $bytes bytes, over the limit of $limit ($path)"
      failed=1
    else
      log_ok "$bin: $bytes bytes ($(awk -v b="$bytes" 'BEGIN { printf "%.2f MiB", b / 1048576 }'), limit $limit)"
    fi
  done
  return "$failed"
}

# The environment a function starts with in the start-up and memory benchmarks: the local stack's
# configuration, secrets from the environment (the local secrets source), no Secrets Manager.
lambda_bench_env() {
  printf '%s\n' \
    "E2B_API_ALLOW_HTTP_LOOPBACK=true" \
    "E2B_API_KEY=e2b_measure0000000000000000000000000000000000" \
    "E2B_WEBHOOK_SECRETS=measure-webhook-secret-000000000000" \
    "JWT_HS256_SECRET=measure-jwt-secret-00000000000000000" \
    "JWT_HS256=true" "JWT_ISSUER=sandman-measure" "JWT_AUDIENCE=sandman" "JWT_TEAM_CLAIM=team_id" \
    "AWS_LAMBDA_FUNCTION_VERSION=\$LATEST" "AWS_LAMBDA_INITIALIZATION_TYPE=on-demand" "RUST_LOG=info"
}
