# shellcheck shell=bash
# The Lambda function binaries, as named in template.yaml's BuildProperties.
SANDMAN_LAMBDA_BINS=(api webhook idle-enforcer snapshot-pruner outbound)

# Cross-builds every function for Lambda's arm64 (Graviton) runtime into <target>/lambda/<bin>/bootstrap.
# Extra arguments go to cargo lambda build (e.g. --quiet).
build_lambda_arm64() {
  local args=("$@") bin
  for bin in "${SANDMAN_LAMBDA_BINS[@]}"; do args+=(--bin "$bin"); done
  (cd "$SANDMAN_ROOT" && cargo lambda build --release --arm64 "${args[@]}")
}
