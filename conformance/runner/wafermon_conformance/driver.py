"""One language's driver process, spoken to in JSON lines (conformance/PROTOCOL.md).

The process stays alive across scenarios. Its stdout carries responses only; its stderr is
collected continuously (so a chatty driver never blocks on a full pipe) and sliced per
scenario into that scenario's log. A driver that dies, answers out of order or goes silent
past a request's deadline raises ``DriverFailure``; the runner then starts a fresh one.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROTOCOL_VERSION = 1
#: Seconds a request may take beyond its own timeout field (flush/close), or in all.
REQUEST_GRACE_S = 20.0
START_TIMEOUT_S = 60.0  # the hello: JVM and R take a while to start


class DriverFailure(Exception):
    """The driver died, broke the protocol or did not answer in time."""


class DriverProcess:
    def __init__(self, command: Sequence[str], cwd: Path, env: dict[str, str] | None = None):
        self.command = list(command)
        self.cwd = cwd
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.hello: dict[str, Any] = {}
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._stderr: list[str] = []
        self._stderr_lock = threading.Lock()
        self._seq = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> dict[str, Any]:
        """Start the process and exchange ``hello``; its answer is kept in ``hello``."""
        try:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise DriverFailure(f"cannot start {' '.join(self.command)}: {exc}") from None
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        hello = self.request({"op": "hello"}, timeout=START_TIMEOUT_S)
        if not hello.get("ok"):
            raise DriverFailure(f"hello was refused: {hello}")
        if hello.get("protocol") != PROTOCOL_VERSION:
            raise DriverFailure(
                f"the driver speaks protocol {hello.get('protocol')!r}, "
                f"the runner {PROTOCOL_VERSION}"
            )
        for field in ("language", "sdk", "sdk_version"):
            if not isinstance(hello.get(field), str) or not hello[field]:
                raise DriverFailure(f"hello: {field} must be a non-empty string, got {hello}")
        self.hello = hello
        return hello

    def request(self, request: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one request, wait for its response (matched by ``seq``)."""
        if self.process is None or self.process.stdin is None:
            raise DriverFailure("the driver is not running")
        self._seq += 1
        message = {**request, "seq": self._seq}
        if timeout is None:
            timeout = float(request.get("timeout") or 0) + REQUEST_GRACE_S
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
        except OSError:
            raise DriverFailure(self._death(f"before reading {request.get('op')!r}")) from None
        deadline = time.monotonic() + timeout
        try:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise DriverFailure(f"no answer to {request.get('op')!r} within {timeout:g}s") from None
        if line is None:
            raise DriverFailure(self._death(f"before answering {request.get('op')!r}"))
        try:
            response = json.loads(line)
        except ValueError:
            raise DriverFailure(f"stdout carried a line that is not JSON: {line[:200]!r}") from None
        if not isinstance(response, dict) or response.get("seq") != self._seq:
            raise DriverFailure(f"expected the answer to seq {self._seq}, got {line[:200]!r}")
        if not isinstance(response.get("ok"), bool):
            raise DriverFailure(f"the answer lacks a boolean 'ok': {line[:200]!r}")
        return response

    def stop(self, timeout: float = 10.0) -> None:
        """``quit``, then wait; kill the process if it does not exit."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                self.process = process
                self.request({"op": "quit"}, timeout=timeout)
            except DriverFailure:
                pass  # it is killed below
            finally:
                self.process = None
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait()

    def log_mark(self) -> int:
        with self._stderr_lock:
            return len(self._stderr)

    def log_since(self, mark: int) -> str:
        with self._stderr_lock:
            return "".join(self._stderr[mark:])

    # -- internals --------------------------------------------------------------------------------

    def _death(self, when: str) -> str:
        process = self.process
        code = None
        if process is not None:
            try:
                code = process.wait(2)
            except subprocess.TimeoutExpired:
                code = None
        tail = self.log_since(max(0, self.log_mark() - 15)).strip()
        what = "closed its stdout" if code is None else f"exited with status {code}"
        return f"the driver {what} {when}" + (f"; stderr ends:\n{tail}" if tail else "")

    def _read_stdout(self) -> None:
        stdout = self.process.stdout if self.process else None
        assert stdout is not None
        for line in stdout:
            if line.strip():
                self._lines.put(line)
        self._lines.put(None)

    def _read_stderr(self) -> None:
        stderr = self.process.stderr if self.process else None
        assert stderr is not None
        for line in stderr:
            with self._stderr_lock:
                self._stderr.append(line.decode("utf-8", "replace"))


def driver_env() -> dict[str, str]:
    """The runner's environment without WAFERMON_* (each init sets what a scenario needs)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("WAFERMON_")}
