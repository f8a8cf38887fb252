"""``wafermon up``: real child processes (sidecar, gateway, central, dashboard) on free ports."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterable

import httpx
import yaml

from wafermon.testing import free_port, wafermon_command


def wafermon(*args: str) -> list[str]:
    return [wafermon_command(), *args]


def ports() -> tuple[list[str], dict[str, int]]:
    """The four --*-port options on free ports, and the ports by option."""
    names = ("--sidecar-port", "--gateway-port", "--central-port", "--dashboard-port")
    chosen = {n: free_port() for n in names}
    return [arg for name, port in chosen.items() for arg in (name, str(port))], chosen


def assert_nothing_answers(numbers: Iterable[int]) -> None:
    for port in numbers:
        with contextlib.suppress(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            raise AssertionError(f"port {port} still answers")


def test_up_once_starts_everything_feeds_a_burst_checks_the_dashboard_and_stops(tmp_path):
    args, chosen = ports()
    data = tmp_path / "data"
    done = subprocess.run(
        wafermon("up", "--once", "--data-dir", str(data), *args),
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = done.stderr
    assert done.returncode == 0, out
    for name in ("gateway", "sidecar", "central", "dashboard"):
        assert f"{name:<9} ready" in out
        assert f"{name:<9} stopped (exit 0)" in out
    assert f"dashboard  http://127.0.0.1:{chosen['--dashboard-port']}/" in out
    assert "[ok] gateway stored every lot: 12 jobs" in out
    assert "[ok] central lists them: 12 jobs" in out
    assert "[ok] dashboard renders the job list" in out
    assert "[ok] sidecar delivered everything" in out
    assert "[FAIL]" not in out
    # The generated configs, the store, the spool, the archive and the logs are in the data dir.
    site = yaml.safe_load((data / "site.yaml").read_text())
    assert site["gateway"]["listen"] == f"127.0.0.1:{chosen['--gateway-port']}"
    assert site["backends"][2]["config"]["url"].startswith("sqlite+aiosqlite:///")
    assert (data / "wafermon.db").is_file()
    assert any((data / "archive").rglob("*.jsonl*"))
    assert {p.name for p in (data / "logs").iterdir()} == {
        "gateway.log", "sidecar.log", "central.log", "dashboard.log"
    }  # fmt: skip
    assert_nothing_answers(chosen.values())  # everything is gone


def test_up_demo_shows_live_data_within_seconds_and_sigterm_stops_all_children(tmp_path):
    args, chosen = ports()
    proc = subprocess.Popen(
        wafermon("up", "--demo", "--data-dir", str(tmp_path / "data"), *args),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    central = f"http://127.0.0.1:{chosen['--central-port']}"
    try:
        deadline = time.monotonic() + 120
        running = []
        while time.monotonic() < deadline and not running:
            assert proc.poll() is None, proc.stderr.read()
            with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                body = httpx.get(f"{central}/v1/jobs", params={"status": "running"}).json()
                running = body["items"]
            time.sleep(0.5)
        assert running, "no running lot showed up through central"
        # Lots keep moving: a live lot's progress or status changes within a few seconds.
        first = {i["entity_id"]: (i["status"], i["progress"]) for i in running}
        changed = False
        for _ in range(40):
            time.sleep(0.5)
            now = httpx.get(f"{central}/v1/jobs", params={"sort": "-updated_at", "limit": 20})
            latest = {i["entity_id"]: (i["status"], i["progress"]) for i in now.json()["items"]}
            if any(latest.get(k, v) != v for k, v in first.items()) or set(latest) - set(first):
                changed = True
                break
        assert changed
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    for name in ("dashboard", "central", "sidecar", "gateway"):
        assert f"{name:<9} stopped (exit 0)" in err
    assert "demo: " in err
    assert_nothing_answers(chosen.values())


def test_up_refuses_busy_ports(tmp_path):
    args, chosen = ports()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", chosen["--gateway-port"]))
        s.listen()
        done = subprocess.run(
            wafermon("up", "--once", "--data-dir", str(tmp_path), *args),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"gateway port {chosen['--gateway-port']} is in use" in done.stderr


def test_up_refuses_a_non_loopback_host(tmp_path):
    """The zero-config stack has no tokens, so it stays on loopback (fail closed)."""
    done = subprocess.run(
        wafermon("up", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "data")),
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--host 0.0.0.0 is not loopback" in done.stderr
    assert not (tmp_path / "data").exists()  # nothing was started or written
