"""Helpers for the e-mail notifier tests (a uniquely named module): the SMTP sink process
(smtp_sink.py) started on a free port, and its Maildir read back."""

from __future__ import annotations

import mailbox
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs

SINK = Path(__file__).with_name("smtp_sink.py")
USER, PASSWORD = "wafermon", "s3cret-Pa55"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@attrs.define
class SmtpServer:
    port: int
    maildir: Path
    process: subprocess.Popen

    def messages(self) -> list[mailbox.MaildirMessage]:
        return [m for _key, m in mailbox.Maildir(self.maildir, create=False).items()]


def start_sink(folder: Path, *extra: str) -> Iterator[SmtpServer]:
    port = free_port()
    maildir = folder / "Maildir"
    process = subprocess.Popen(
        [sys.executable, str(SINK), "--port", str(port), "--maildir", str(maildir), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        line = process.stdout.readline()  # "ready" once it listens (or EOF if it died)
        if line.strip() != "ready":
            raise RuntimeError(f"the SMTP sink did not start (exit {process.poll()})")
        yield SmtpServer(port, maildir, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
