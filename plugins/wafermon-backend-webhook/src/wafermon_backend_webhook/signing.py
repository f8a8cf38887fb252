"""HMAC-SHA256 request signing for outgoing webhooks, and its verification for receivers.

The signed message is ``<timestamp>.<body>``: the Unix time in seconds as ASCII digits, a dot,
then the exact body bytes. Binding the timestamp in makes a captured request useless after the
replay window (``DEFAULT_TOLERANCE_S``), and signing the raw bytes (never a re-serialised
object) makes the check independent of JSON formatting. Headers::

    X-Wafermon-Timestamp: 1764320400
    X-Wafermon-Signature: v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

The signature header may list several ``v1=`` values separated by commas (a sender rotating
its secret signs with both); a receiver accepts the request when any of them matches. This
module is shared by the webhook emitter and the alert notifiers; it must never log a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

SIGNATURE_HEADER = "X-Wafermon-Signature"
TIMESTAMP_HEADER = "X-Wafermon-Timestamp"
SCHEME = "v1"
#: How far a request's timestamp may be from the receiver's clock, either way (seconds).
DEFAULT_TOLERANCE_S = 300


class SignatureError(ValueError):
    """A request failed verification; the message says why (never which secret was tried)."""


def _key(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    if not key:
        raise ValueError("an empty signing secret would make every signature forgeable")
    return key


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Wafermon-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(_key(secret), str(int(timestamp)).encode() + b"." + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signature_headers(
    secrets: str | bytes | Sequence[str | bytes], body: bytes, *, now: float | None = None
) -> dict[str, str]:
    """Both headers for a request carrying ``body``: timestamp and one signature per secret."""
    if isinstance(secrets, str | bytes):
        secrets = [secrets]
    timestamp = int(time.time() if now is None else now)
    values = ",".join(sign(secret, timestamp, body) for secret in secrets)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: values}


def verify(
    secrets: str | bytes | Sequence[str | bytes],
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    tolerance: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> None:
    """Check a received request; raise SignatureError saying why it is refused.

    ``timestamp`` and ``signature`` are the raw header values (None when missing). A request
    older or newer than ``tolerance`` seconds is refused even with a valid signature, so a
    receiver that also remembers the signatures it saw within the window stops every replay.
    """
    if isinstance(secrets, str | bytes):
        secrets = [secrets]
    if not timestamp or not timestamp.isascii() or not timestamp.isdigit():
        raise SignatureError(f"{TIMESTAMP_HEADER} is missing or not Unix seconds")
    skew = abs((time.time() if now is None else now) - int(timestamp))
    if skew > tolerance:
        raise SignatureError(f"{TIMESTAMP_HEADER} is {skew:.0f}s away, outside {tolerance:.0f}s")
    offered = [
        value.strip().removeprefix(SCHEME + "=")
        for value in (signature or "").split(",")
        if value.strip().startswith(SCHEME + "=")
    ]
    if not offered:
        raise SignatureError(f"{SIGNATURE_HEADER} is missing or has no {SCHEME}= value")
    expected = [sign(secret, int(timestamp), body).removeprefix(SCHEME + "=") for secret in secrets]
    # compare_digest against every pair: no early exit that would time which one matched.
    matched = False
    for mine in expected:
        for theirs in offered:
            matched |= hmac.compare_digest(mine, theirs)
    if not matched:
        raise SignatureError("signature does not match the body and timestamp")
