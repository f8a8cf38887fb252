"""wafermon-sdk: monitor jobs and subjobs from Python and ship their lifecycle events.

    from uuid import uuid4
    from wafermon_sdk import Monitored, AppRef

    app = AppRef(app_id=uuid4(), name="wafer-process", version="2.1.0")
    with Monitored(site_id="fab1", app=app, entity_type="job", business_key="batch-12345") as job:
        for wafer in wafers:
            with Monitored(site_id="fab1", app=app, entity_type="subjob",
                           parent_id=job.entity_id, sub_key=f"wafer-{wafer}") as subjob:
                process(wafer)
                subjob.tick(extra_meta={"progress": 0.5})

Events go to a bounded in-process queue; a background thread batches them to the sidecar
(``WAFERMON_MODE=sidecar``, the default), straight to the site's backend plugins (``direct``)
or both, retries, and spools to local disk while a destination is unreachable. The caller's
thread never waits on the network. Settings: WAFERMON_* variables, a YAML/TOML file, or
arguments to ``initialize``/``Client``. The user guide is docs/sdk-python.md.
"""

from .aws import create_aws_emitter, get_aws_metadata, monitored_lambda_handler
from .client import (
    Client,
    SidecarEmitter,
    close,
    emit_batch,
    emit_event,
    flush,
    get_client,
    initialize,
    monitored,
    stats,
)
from .config import Settings, load_settings
from .monitored import AppRef, Monitored, current
from .monitors import MonitorError, upsert_monitor
from .wire import SDK_VERSION

__version__ = SDK_VERSION

__all__ = [
    "AppRef",
    "Client",
    "MonitorError",
    "Monitored",
    "Settings",
    "SidecarEmitter",
    "__version__",
    "close",
    "create_aws_emitter",
    "current",
    "emit_batch",
    "emit_event",
    "flush",
    "get_aws_metadata",
    "get_client",
    "initialize",
    "load_settings",
    "monitored",
    "monitored_lambda_handler",
    "stats",
    "upsert_monitor",
]
