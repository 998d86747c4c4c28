"""Starts the built e2b-emulator binary once per test session on a free port.

E2B_EMULATOR_BIN overrides the binary (default: <repo>/target/debug/e2b-emulator).
"""

import os
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_BIN = REPO_ROOT / "target" / "debug" / "e2b-emulator"
API_KEY = "e2b_python_suite_key"
OTHER_TEAM_KEY = "e2b_python_other_team_key"
START_TIMEOUT_S = 30


class EmulatorProcess:
    def __init__(self, url: str, process: subprocess.Popen):
        self.url = url
        self.api_key = API_KEY
        self.other_team_key = OTHER_TEAM_KEY
        self.process = process
        self.admin = httpx.Client(base_url=url, timeout=30)

    def client(self, key: str = API_KEY) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": key}, timeout=30)

    def reset(self) -> None:
        self.admin.post("/admin/reset").raise_for_status()

    def advance(self, seconds: float) -> None:
        self.admin.post("/admin/clock/advance", json={"seconds": seconds}).raise_for_status()

    def calls(self) -> list:
        return self.admin.get("/admin/calls").json()


def _binary() -> Path:
    path = Path(os.environ.get("E2B_EMULATOR_BIN", DEFAULT_BIN))
    if not path.is_file():
        pytest.fail(
            f"e2b-emulator binary not found at {path}: build it with "
            "`cargo build -p e2b-emulator` or set E2B_EMULATOR_BIN",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def emulator():
    env = dict(os.environ)
    env.update(
        {
            "E2B_EMULATOR_TEAMS": f"team-python:{API_KEY},team-other:{OTHER_TEAM_KEY}",
            "E2B_EMULATOR_SNAPSHOT_DURATION_MS": "0",
            "E2B_EMULATOR_WEBHOOK_RETRY_DELAY_MS": "50",
            "RUST_LOG": env.get("RUST_LOG", "warn"),
        }
    )
    process = subprocess.Popen(
        [str(_binary()), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=None,
        env=env,
        text=True,
    )
    first_line: list[str] = []
    reader = threading.Thread(target=lambda: first_line.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT_S)
    url = first_line[0].strip() if first_line else ""
    if not url.startswith("http://"):
        process.kill()
        pytest.fail(f"e2b-emulator did not print its URL (got {url!r})", pytrace=False)
    handle = EmulatorProcess(url, process)
    try:
        yield handle
    finally:
        handle.admin.close()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def fresh(emulator):
    """The session's emulator, reset to an empty state for this test."""
    emulator.reset()
    return emulator
