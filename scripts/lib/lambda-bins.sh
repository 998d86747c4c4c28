# shellcheck shell=bash
# The Lambda function binaries, as named in template.yaml's BuildProperties.
SANDMAN_LAMBDA_BINS=(api webhook idle-enforcer snapshot-pruner)

# Their packages. Building by package (not `--bin` from the workspace root) keeps the features of
# dev-only members (infra/, tests/: aws-lc for their own clients) out of the function binaries.
SANDMAN_LAMBDA_PACKAGES=(sandman-api sandman-webhook sandman-idle-enforcer sandman-snapshot-pruner)

# Cross-builds every function for Lambda's arm64 (Graviton) runtime into <target>/lambda/<bin>/bootstrap.
# Extra arguments go to cargo lambda build (e.g. --quiet).
build_lambda_arm64() {
  local args=("$@") package
  for package in "${SANDMAN_LAMBDA_PACKAGES[@]}"; do args+=(--package "$package"); done
  (cd "$SANDMAN_ROOT" && cargo lambda build --release --arm64 "${args[@]}")
}
