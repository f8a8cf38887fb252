"""A real ``wafermon sidecar`` routing to NATS: through an outage and a kill -9, nothing lost.

Also the Python SDK's direct mode with a site config naming the nats backend.
"""

from __future__ import annotations

import urllib.request

import nats
import orjson
from nats_helpers import held, make_events

from wafermon import encode_ndjson
from wafermon.testing import Proc, post_json, processes, sidecar_config, wait_for


async def stream_ids(url: str, stream: str) -> list[str]:
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=1)
    try:
        js = nc.jetstream(timeout=5)
        return [msg_id for _, _, msg_id in await held(js, stream)]
    finally:
        await nc.close()


async def test_sidecar_to_nats_through_an_outage_and_a_kill(nats_server, tmp_path, names):
    server = nats_server()
    stream = names["stream"]
    backend = {
        "name": "queue",
        "type": "nats",
        "config": {"servers": [server.url], "stream": stream,
                   "subject_prefix": names["subject_prefix"], "ack_timeout": "3s"},
    }  # fmt: skip
    sent = []
    with processes() as running:
        sidecar = Proc("sidecar", sidecar_config(tmp_path, [backend]), log_dir=tmp_path)
        running.append(sidecar.start())
        ingest = f"{sidecar.url}/v1/ingest/events"

        def post(events) -> None:
            status, answer = post_json(ingest, encode_ndjson(events))
            assert status in (200, 202), answer
            sent.extend(events)

        post(make_events(300))

        async def all_there() -> bool:
            return len(set(await stream_ids(server.url, stream))) == len(sent)

        await wait_for(all_there, 30)

        server.stop()  # NATS down: the sidecar keeps taking events into its spool
        post(make_events(300, start=300))
        await wait_for(lambda: health(sidecar) == "degraded", 30)
        server.start()
        await wait_for(all_there, 60)

        post(make_events(300, start=600))
        sidecar.kill9()  # batches in flight may be sent again after the restart
        sidecar.start()
        post(make_events(100, start=900))
        await wait_for(all_there, 60)
        sidecar.terminate()
    ids = await stream_ids(server.url, stream)
    server.stop()
    assert sorted(ids) == sorted(str(e.event_id) for e in sent)  # each once: de-duplicated
    assert "password" not in sidecar.log()


def health(sidecar: Proc) -> str:
    """The sidecar's /v1/healthz status: ok, degraded (a backend failing), down, stopping."""
    with urllib.request.urlopen(f"{sidecar.url}/v1/healthz", timeout=5) as answer:
        return orjson.loads(answer.read())["status"]


async def test_python_sdk_direct_mode_publishes_to_nats(tmp_path, nats_url, names):
    import yaml

    from wafermon_sdk import AppRef, Client, Monitored

    config = tmp_path / "site.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "site_id": "fab1",
                "backends": [
                    {
                        "name": "queue",
                        "type": "nats",
                        "config": {
                            "servers": [nats_url],
                            "stream": names["stream"],
                            "subject_prefix": names["subject_prefix"],
                        },
                    }
                ],
            }
        )
    )
    client = Client(mode="direct", site_config=str(config), spool_dir=str(tmp_path / "spool"))
    etch = AppRef(name="etch", version="2.1")
    lot = Monitored(app=etch, business_key="LOT-1", client=client)
    with lot, Monitored(app=etch, entity_type="subjob", sub_key="wafer-1", client=client):
        pass
    assert client.flush(timeout=20)
    client.close()
    ids = await stream_ids(nats_url, names["stream"])
    assert len(ids) == 4  # job started/finished, subjob started/finished
