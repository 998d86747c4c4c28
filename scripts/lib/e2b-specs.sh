# shellcheck shell=bash
# E2B's OpenAPI documents, which the emulator's contract tests check every answer against. They
# are not vendored: each is pinned by its sha256 (infra/e2b-emulator/python/e2b-specs.sha256) and
# copied into $SANDMAN_CACHE/e2b-specs from a local copy (SANDMAN_E2B_REFS, default ../shared/refs
# beside the checkout) or, failing that, downloaded from its pinned address. A file whose checksum
# differs is never used. Source scripts/lib/common.sh first.
#
#   e2b_specs_install   # idempotent; non-zero (after saying which and why) when a spec is missing

E2B_SPECS_DIR="$SANDMAN_CACHE/e2b-specs"
E2B_SPECS_SUMS="$SANDMAN_ROOT/infra/e2b-emulator/python/e2b-specs.sha256"
E2B_SPECS_REFS="${SANDMAN_E2B_REFS:-$SANDMAN_ROOT/../shared/refs}"
export E2B_SPECS_DIR

# Where each document can be downloaded, at the commit whose content the checksum pins.
_e2b_spec_url() {
  case "$1" in
    e2b-openapi.yml) echo "https://raw.githubusercontent.com/e2b-dev/infra/8614ec4624c9908f63ccc2882fa8de47a0b406a2/spec/openapi.yml" ;;
    *) return 1 ;;
  esac
}

_e2b_spec_sum_ok() { [[ -f $1 && "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]; }

# Copies or downloads one spec into the cache; prints why not on failure.
_e2b_spec_fetch() {
  local name="$1" sum="$2" target="$E2B_SPECS_DIR/$1" local_copy="$E2B_SPECS_REFS/$1" url partial
  if _e2b_spec_sum_ok "$target" "$sum"; then
    log_ok "$name (sha256 ${sum:0:12}…) in $E2B_SPECS_DIR"
    return 0
  fi
  partial="$target.partial"
  if [[ -f $local_copy ]]; then
    if _e2b_spec_sum_ok "$local_copy" "$sum"; then
      cp "$local_copy" "$partial" && mv "$partial" "$target"
      log_ok "$name copied from $local_copy (sha256 matches)"
      return 0
    fi
    log_warn "$local_copy does not match the pinned sha256 ${sum:0:12}…; not used"
  fi
  if url="$(_e2b_spec_url "$name")"; then
    log_info "downloading $name from $url"
    if curl --fail --silent --show-error --location --max-time 60 --output "$partial" "$url" 2>>"$SANDMAN_LOGS/e2b-specs.log" &&
      _e2b_spec_sum_ok "$partial" "$sum"; then
      mv "$partial" "$target"
      log_ok "$name downloaded (sha256 matches)"
      return 0
    fi
    rm -f "$partial"
    log_warn "could not download $name with the pinned checksum (log: $SANDMAN_LOGS/e2b-specs.log)"
  fi
  log_warn "$name: no copy with sha256 $sum (looked in $E2B_SPECS_REFS${url:+ and at $url})"
  return 1
}

e2b_specs_install() {
  mkdir -p "$E2B_SPECS_DIR"
  local sum name missing=0
  while read -r sum name; do
    [[ -n $sum ]] || continue
    _e2b_spec_fetch "$name" "$sum" || missing=$((missing + 1))
  done <"$E2B_SPECS_SUMS"
  ((missing == 0))
}
