"""wafermon-backend-nats: NATS JetStream between sidecars and a group of gateways.

As a backend (sidecar router, Python SDK direct mode), each event is published to
``<subject_prefix>.<site>.<app>`` with ``Nats-Msg-Id`` = event_id, and ``emit`` returns once
the server acknowledged every one::

    backends:
      - name: queue
        type: nats
        config:
          servers: [nats://nats1:4222, nats://nats2:4222]
          user: wafermon
          password: ${NATS_PASSWORD}       # a secret: masked, never logged
          stream: WAFERMON_EVENTS          # created when missing (file storage)
          duplicate_window: 2m

As a gateway stream (``gateway.streams``), every gateway binds the same durable pull
consumer and stores what it fetches before acking it::

    gateway:
      streams:
        - name: events
          type: nats
          config: {servers: [nats://nats1:4222], durable: wafermon-gateway}

docs/backends/nats.md has every setting and what each failure does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wafermon.plugins import lazy_exports

if TYPE_CHECKING:
    from .connection import subject_token

# Imported on first use: every wafermon command and host loads this package to find its hooks.
_EXPORTS = {
    "subject_token": "connection",
}
__all__ = [
    "subject_token",
]
__getattr__ = lazy_exports(__name__, _EXPORTS)
