"""A private nats-server (Debian's binary) for tests that stop, kill or reconfigure it.

The shared server of scripts/services (WAFERMON_TEST_NATS) serves every other test; a test
that takes the server down mid-run starts its own here, on free ports and a store under its
tmp_path, and restarts it on the same port and store as an operator would.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from wafermon import App, Entity, Event


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NatsServer:
    def __init__(self, root: Path, config: str = "") -> None:
        binary = shutil.which("nats-server")
        if binary is None:
            pytest.fail("nats-server is not installed: apt-get install nats-server (scripts/test)")
        self.binary = binary
        self.root = root
        self.port, self.monitor = free_port(), free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.config = root / "nats.conf"
        self.config.write_text(config)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.config), "-a", "127.0.0.1", "-p", str(self.port),
             "-m", str(self.monitor), "-js", "-sd", str(self.root / "js"), "-n", "wafermon-test",
             "-l", str(self.root / "nats.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"nats-server exited: {(self.root / 'nats.log').read_text()[-2000:]}")
            try:
                health = f"http://127.0.0.1:{self.monitor}/healthz?js-enabled-only=true"
                if httpx.get(health, timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail("nats-server did not become ready within 20 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        self.proc = None


def make_events(n: int, *, site: str = "fab1", app: str = "etch", start: int = 0) -> list[Event]:
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    return [
        Event(
            event_id=uuid.uuid4(),
            kind="finished",
            time=t0 + timedelta(milliseconds=i),
            site_id=site,
            app=App(name=app, version="2.1"),
            entity=Entity(type="job", id=f"j-{i}", business_key=f"LOT-{i}"),
        )
        for i in range(start, start + n)
    ]


async def held(js, stream: str) -> list[tuple[str, bytes, str]]:
    """(subject, body, Nats-Msg-Id) of every message the stream holds, in order."""
    info = await js.stream_info(stream)
    if not info.state.messages:
        return []
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        out.append((msg.subject, msg.data, msg.headers["Nats-Msg-Id"]))
    return out
