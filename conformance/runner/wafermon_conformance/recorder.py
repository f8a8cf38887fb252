"""A recording sidecar: the real sidecar's ingest contract on 127.0.0.1, recording every request.

It serves ``POST /v1/ingest/events`` (and ``/v1/ingest/events:batch``) with the sidecar's
answers (docs/sidecar.md): 202 with one result per event when some are valid, 400 when none
is or the body is unreadable, 413 above the body cap, 415 for another Content-Type, 422 above
the event cap, 503 with ``Retry-After`` when told to refuse. Per-event verdicts come from the
core codec (``wafermon.decode_batch``), exactly as the real sidecar's. It stores nothing: it
records the raw body, headers and timing of each request and what it answered, which is what
the runner judges.

A scenario controls it step by step: ``down()`` closes the listening socket **and** every
open connection (a client's pooled keep-alive connection must fail as against a dead
process) while keeping the port reserved (bound, not listening: connecting is refused);
``up()`` listens again on the same port; ``refuse(n, status, retry_after)`` answers the next
``n`` ingest requests with that status. It is a standard-library threaded HTTP/1.1 server
because the runner needs exactly this control over sockets, and no event loop.

It must never be used to store events for real: it keeps them in memory only.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

from wafermon import BatchDecodeError, decode_batch

INGEST_PATHS = ("/v1/ingest/events", "/v1/ingest/events:batch")
CONTENT_TYPES = ("application/json", "application/x-ndjson", "application/ndjson")
#: The real sidecar's defaults (sidecar.max_body_bytes, sidecar.max_batch_events).
MAX_BODY_BYTES = 16 * 2**20
MAX_BATCH_EVENTS = 10_000


@attrs.define
class EventVerdict:
    """One line of a request body: its position, the parsed JSON (None if unreadable), the
    codec's verdict and the problems it found."""

    index: int
    document: Any
    accepted: bool
    problems: list[str]


@attrs.define
class Request:
    """One request as received, and what the recorder answered."""

    number: int
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    received: float  # time.monotonic() when the request line arrived
    status: int = 0
    answered: float = 0.0  # time.monotonic() when the answer was sent
    retry_after: float | None = None
    events: list[EventVerdict] = attrs.Factory(list)

    @property
    def is_ingest(self) -> bool:
        return self.method == "POST" and self.path.split("?", 1)[0] in INGEST_PATHS

    def summary(self) -> dict[str, Any]:
        """JSON-friendly form for logs and result files (the body as text, cut)."""
        return {
            "number": self.number,
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "status": self.status,
            "retry_after": self.retry_after,
            "events": len(self.events),
            "accepted": sum(1 for e in self.events if e.accepted),
            "body": self.body[:2000].decode("utf-8", "replace"),
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    recorder: Recorder

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection cut by ``down()`` is expected: note it, print no traceback."""
        self.recorder.log.append(f"connection from {client_address} ended: {sys.exc_info()[1]!r}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as SDK connection pools expect
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.recorder._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.recorder._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        self.server.recorder.log.append(format % args)

    def do_GET(self) -> None:
        if self.path == "/v1/healthz":
            self._answer(200, {"status": "ok", "site_id": None}, None)
        else:
            self._answer(404, {"error": f"no route {self.path}"}, None)

    def do_POST(self) -> None:
        recorder = self.server.recorder
        request = Request(
            number=0,
            method="POST",
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=b"",
            received=time.monotonic(),
        )
        body = self._read_body()
        recorder._record(request)
        if isinstance(body, tuple):
            self.close_connection = True  # the rest of the body is not read
            self._answer(*body, request)
            return
        request.body = body
        status, answer, headers = recorder._verdict(request)
        self._answer(status, answer, request, headers)

    def _read_body(self) -> bytes | tuple[int, dict[str, Any]]:
        """The body (by Content-Length, or chunked as the real sidecar also reads), or the
        error answer: 413 past the cap, 400 for a malformed length or chunk."""
        message = f"request body is larger than the limit of {MAX_BODY_BYTES} bytes"
        too_large = (413, {"error": message})
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, size = [], 0
            while True:
                line = self.rfile.readline(1024).split(b";", 1)[0].strip()
                try:
                    length = int(line, 16)
                except ValueError:
                    return 400, {"error": f"malformed chunk size {line[:40]!r}"}
                if length == 0:
                    while self.rfile.readline(1024).strip():
                        pass  # trailers
                    return b"".join(chunks)
                size += length
                if size > MAX_BODY_BYTES:
                    return too_large
                chunks.append(self.rfile.read(length))
                self.rfile.readline(8)  # the CRLF after the chunk
        declared = self.headers.get("Content-Length", "0")
        if not declared.isdigit():
            return 400, {"error": f"invalid Content-Length header: {declared!r}"}
        if int(declared) > MAX_BODY_BYTES:
            return too_large
        return self.rfile.read(int(declared))

    def _answer(
        self,
        status: int,
        body: dict[str, Any],
        request: Request | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode()
        if request is not None:
            # Recorded before the client can see the answer: once an SDK's call returns, the
            # runner must find the request answered.
            request.status = status
            request.answered = time.monotonic()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class Recorder:
    """The recording sidecar. ``start()`` listens on a free port of 127.0.0.1 (``url``)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.requests: list[Request] = []
        self.log: list[str] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._placeholder: socket.socket | None = None  # holds the port while down
        self._refuse: list[tuple[int, float | None]] = []  # (status, retry_after) per request

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._server is not None

    # -- control ----------------------------------------------------------------------------------

    def start(self, *, up: bool = True) -> Recorder:
        """Take a port; listen on it if ``up``, else only hold it (connections are refused)."""
        self._placeholder = self._bound_socket(0)
        self.port = self._placeholder.getsockname()[1]
        if up:
            self.up()
        return self

    def up(self) -> None:
        if self._server is not None:
            return
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None
        server = _Server((self.host, self.port), _Handler)
        server.recorder = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def down(self) -> None:
        """Stop listening and cut every open connection; the port stays reserved."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)
        self._placeholder = self._bound_socket(self.port)

    def refuse(self, count: int, status: int = 503, retry_after: float | None = None) -> None:
        """Answer the next ``count`` ingest requests with ``status`` (and Retry-After)."""
        with self._lock:
            self._refuse.extend([(status, retry_after)] * count)

    def stop(self) -> None:
        self.down()
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- what was received ------------------------------------------------------------------------

    def ingest_requests(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.is_ingest]

    def accepted_events(self) -> list[tuple[Request, EventVerdict]]:
        """Every event a 202 answer accepted, in arrival order (request, then line)."""
        return [
            (request, event)
            for request in self.ingest_requests()
            if request.status == 202
            for event in request.events
            if event.accepted
        ]

    # -- internals --------------------------------------------------------------------------------

    def _bound_socket(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, port))
        return sock

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _record(self, request: Request) -> None:
        with self._lock:
            request.number = len(self.requests)
            self.requests.append(request)

    def _verdict(self, request: Request) -> tuple[int, dict[str, Any], dict[str, str]]:
        """The real sidecar's answer to ``request`` (see hosts/.../sidecar/ingest.py)."""
        if not request.is_ingest:
            return 404, {"error": f"no route POST {request.path}"}, {}
        with self._lock:
            refusal = self._refuse.pop(0) if self._refuse else None
        if refusal is not None:
            status, retry_after = refusal
            request.retry_after = retry_after
            headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
            body = {"error": "the recording sidecar refuses this request, as told; nothing stored"}
            return status, body, headers
        kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind and kind not in CONTENT_TYPES:
            return 415, {"error": f"unsupported Content-Type {kind!r}"}, {}
        try:
            batch = decode_batch(request.body)
        except BatchDecodeError as exc:
            problems = [{"path": p.path, "message": p.message} for p in exc.problems]
            body = {"error": "the body is not an event, a JSON array or NDJSON"}
            return 400, {**body, "problems": problems}, {}
        total = len(batch.events) + len(batch.rejected)
        if total > MAX_BATCH_EVENTS:
            message = f"the body holds {total} events, more than the limit of {MAX_BATCH_EVENTS}"
            return 422, {"error": message}, {}
        documents = _documents(request.body, total)
        results: list[dict[str, Any]] = [{}] * total
        verdicts: list[EventVerdict] = [None] * total  # type: ignore[list-item]
        for bad in batch.rejected:
            problems = [{"path": p.path, "message": p.message} for p in bad.problems]
            results[bad.index] = {
                "index": bad.index,
                "event_id": bad.event_id,
                "status": "rejected",
                "errors": problems,
            }
            verdicts[bad.index] = EventVerdict(
                bad.index, documents[bad.index], False, [str(p) for p in bad.problems]
            )
        for index, event in zip(batch.indexes, batch.events, strict=True):
            results[index] = {
                "index": index,
                "event_id": str(event.event_id),
                "status": "accepted",
                "errors": [],
            }
            verdicts[index] = EventVerdict(index, documents[index], True, [])
        request.events = verdicts
        accepted = len(batch.events)
        body = {"accepted": accepted, "rejected": total - accepted, "results": results}
        if not accepted:
            body = {"error": "no event in the body is valid; nothing was stored", **body}
        return (202 if accepted else 400), body, {}


def _documents(body: bytes, total: int) -> list[Any]:
    """The parsed JSON of each event of a body, by the codec's indexes (None if unreadable)."""
    stripped = body.lstrip()
    try:
        whole = json.loads(body)
    except ValueError:
        whole = None
    if stripped[:1] == b"[" and isinstance(whole, list):
        return whole
    if stripped[:1] == b"{" and isinstance(whole, dict):
        return [whole]
    documents: list[Any] = []
    for line in body.split(b"\n"):
        if not line.strip():
            continue
        try:
            documents.append(json.loads(line))
        except ValueError:
            documents.append(None)
    return documents + [None] * (total - len(documents))
