"""The official `e2b` Python SDK, unchanged, pointed at the emulator with E2B_API_URL."""

import pytest
from e2b import Sandbox, SandboxQuery, SandboxState
from e2b.exceptions import NotFoundException, SandboxException


@pytest.fixture
def sdk_env(fresh, monkeypatch):
    monkeypatch.setenv("E2B_API_URL", fresh.url)
    monkeypatch.setenv("E2B_API_KEY", fresh.api_key)
    monkeypatch.delenv("E2B_DEBUG", raising=False)
    return fresh


def routes_called(emulator):
    return [(call["method"], call["route"]) for call in emulator.calls()]


def test_create_get_info_list_set_timeout_kill(sdk_env):
    sandbox = Sandbox.create("base", timeout=120, metadata={"project": "p1"})
    info = sandbox.get_info()
    assert info.sandbox_id == sandbox.sandbox_id
    assert info.state == SandboxState.RUNNING
    assert info.metadata == {"project": "p1"}
    assert (info.end_at - info.started_at).total_seconds() == 120

    Sandbox.create("base", timeout=60, metadata={"project": "other"})
    paginator = Sandbox.list(query=SandboxQuery(metadata={"project": "p1"}), limit=10)
    listed = paginator.next_items()
    assert [s.sandbox_id for s in listed] == [sandbox.sandbox_id]
    assert not paginator.has_next

    sandbox.set_timeout(30)
    info = sandbox.get_info()
    assert (info.end_at - info.started_at).total_seconds() < 120

    assert sandbox.kill() is True
    assert Sandbox.kill(sandbox.sandbox_id) is False
    with pytest.raises(NotFoundException):
        Sandbox.get_info(sandbox.sandbox_id)

    called = routes_called(sdk_env)
    assert ("POST", "CreateSandbox") in called
    assert any(call["path"] == "/v2/sandboxes" and call["method"] == "POST" for call in sdk_env.calls())


def test_list_pages_through_x_next_token(sdk_env):
    created = {Sandbox.create("base", timeout=60).sandbox_id for _ in range(3)}
    paginator = Sandbox.list(limit=2)
    seen = []
    while paginator.has_next:
        seen.extend(s.sandbox_id for s in paginator.next_items())
    assert set(seen) == created
    assert len(seen) == 3


def test_pause_connect_and_auto_pause(sdk_env):
    sandbox = Sandbox.create("base", timeout=60)
    assert sandbox.pause() is True
    assert Sandbox.pause(sandbox.sandbox_id) is False, "409 reads as already paused"
    assert Sandbox.get_info(sandbox.sandbox_id).state == SandboxState.PAUSED

    resumed = Sandbox.connect(sandbox.sandbox_id, timeout=90)
    assert resumed.sandbox_id == sandbox.sandbox_id
    info = resumed.get_info()
    assert info.state == SandboxState.RUNNING
    assert (info.end_at - info.started_at).total_seconds() == 90
    assert any(call["path"].startswith("/v2/sandboxes/") and call["path"].endswith("/connect") for call in sdk_env.calls())

    auto = Sandbox.create("base", timeout=30, lifecycle={"on_timeout": "pause"})
    sdk_env.advance(31)
    assert Sandbox.get_info(auto.sandbox_id).state == SandboxState.PAUSED

    with pytest.raises(NotFoundException):
        Sandbox.connect("unknown0000000000000", timeout=10)


def test_snapshot_restore_and_delete(sdk_env):
    source = Sandbox.create("base", timeout=300)
    snapshot = source.create_snapshot()
    assert snapshot.snapshot_id

    listed = Sandbox.list_snapshots(sandbox_id=source.sandbox_id).next_items()
    assert [s.snapshot_id for s in listed] == [snapshot.snapshot_id]

    restored = Sandbox.create(snapshot.snapshot_id, timeout=60)
    assert restored.get_info().state == SandboxState.RUNNING
    with pytest.raises(SandboxException):
        Sandbox.delete_snapshot(snapshot.snapshot_id)

    restored.kill()
    assert Sandbox.delete_snapshot(snapshot.snapshot_id) is True
    assert Sandbox.delete_snapshot(snapshot.snapshot_id) is False
    assert source.get_info().state == SandboxState.RUNNING, "the source sandbox is unaffected"
