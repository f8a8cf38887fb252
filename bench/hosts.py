"""Real wafermon host processes for the benchmarks: a free port, and ``host`` to run one."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def host(command: str, config: str, workdir: Path) -> Iterator[str]:
    """A real ``wafermon gateway|sidecar`` process; yields its base URL once healthy."""
    port = free_port()
    path = workdir / f"{command}-{port}.yaml"
    path.write_text(config)
    exe = shutil.which("wafermon") or sys.exit("the wafermon command is not installed")
    log = (workdir / f"{command}-{port}.log").open("w")
    proc = subprocess.Popen(
        [
            exe,
            command,
            "--config",
            str(path),
            "--listen",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/v1/healthz", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{command} did not start; see {log.name}")
            time.sleep(0.1)
        yield base
    finally:
        if proc.poll() is not None:  # died during the run: show why
            log.flush()
            tail = Path(log.name).read_text(errors="replace")[-3000:]
            print(f"{command} exited with {proc.returncode}:\n{tail}", file=sys.stderr)
        proc.terminate()
        proc.wait(30)
        log.close()
