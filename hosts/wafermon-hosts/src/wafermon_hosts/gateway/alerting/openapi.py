"""OpenAPI component schemas of the alerting API (the operations are on the handlers),
generated from the Structs of ``bodies``: the answers and the request bodies (a monitor, a
silence) the handlers decode into."""

from __future__ import annotations

from typing import Any

from ...common.bodies import schemas
from .bodies import TYPES

ALERT_SCHEMAS: dict[str, Any] = schemas(*TYPES)
