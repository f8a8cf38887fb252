"""Real wafermon host processes for the benchmarks: a free port, ``host`` to run one, and
``run_sdk_program`` to run an SDK's benchmark program against a real sidecar."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
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


def run_sdk_program(argv: list[str], label: str, env: dict[str, str] | None = None) -> dict:
    """Run an SDK's benchmark program against a real sidecar; its JSON stdout, decoded.

    The sidecar stores into the filesystem backend in a temporary folder. The program gets the
    caller's environment minus every WAFERMON_* variable, plus WAFERMON_SIDECAR_URL,
    WAFERMON_SITE_ID=fab1, WAFERMON_SPOOL_DIR (a fresh folder) and ``env``.
    """
    with tempfile.TemporaryDirectory(prefix=f"wafermon-bench-{label}-") as tmp:
        work = Path(tmp)
        config = (
            "site_id: fab1\n"
            f"sidecar: {{spool: {{dir: '{work / 'sidecar-spool'}'}}}}\n"
            "backends: [{name: archive, type: filesystem, config: "
            f"{{root: '{work / 'events'}'}}}}]\n"
        )
        with host("sidecar", config, work) as sidecar:
            run_env = {k: v for k, v in os.environ.items() if not k.startswith("WAFERMON_")}
            run_env.update(
                WAFERMON_SIDECAR_URL=sidecar,
                WAFERMON_SITE_ID="fab1",
                WAFERMON_SPOOL_DIR=str(work / "sdk-spool"),
                **(env or {}),
            )
            print(f"bench {label} ...", file=sys.stderr, flush=True)
            done = subprocess.run(argv, env=run_env, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout)
