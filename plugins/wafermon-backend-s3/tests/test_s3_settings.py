"""Settings: credentials from the environment, wrong keys, secrets never shown, bad values."""

from __future__ import annotations

import pytest

from wafermon.config import make_config_converter
from wafermon.errors import explain
from wafermon_backend_s3.adapter import AdapterSettings, S3QueryAdapter
from wafermon_backend_s3.emitter import EmitterSettings


async def test_credentials_come_from_the_environment_when_the_config_has_none(
    s3_config, bucket_name, monkeypatch
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_config["access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_config["secret_access_key"])
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(name, "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never probe off-box
    config = {k: v for k, v in s3_config.items() if not k.endswith(("key_id", "access_key"))}
    adapter = S3QueryAdapter("s3", AdapterSettings(bucket=bucket_name, **config))
    await adapter.start()
    try:
        assert (await adapter.health()).ok
    finally:
        await adapter.close()


async def test_wrong_keys_make_health_fail_without_showing_the_secret(s3_config, bucket_name):
    config = {**s3_config, "secret_access_key": "not-the-secret-4711"}
    adapter = S3QueryAdapter("s3", AdapterSettings(bucket=bucket_name, **config))
    await adapter.start()
    try:
        health = await adapter.health()
    finally:
        await adapter.close()
    assert not health.ok
    assert "not-the-secret-4711" not in health.detail
    assert "not-the-secret-4711" not in repr(adapter.settings)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"bucket": "b", "prefix": "/abs"}, "prefix"),
        ({"bucket": "b", "prefix": "a/../b"}, "prefix"),
        ({"bucket": "b", "access_key_id": "only-one"}, "secret_access_key"),
        ({"bucket": "b", "format": "csv"}, "format"),
        ({"bucket": "b", "part_size": "1MiB"}, "part_size"),
    ],
)
def test_bad_settings_name_their_field(tmp_path, config, field):
    converter = make_config_converter(tmp_path)
    with pytest.raises(Exception) as caught:  # noqa: PT011 - cattrs' error, explained below
        converter.structure(config, EmitterSettings)
    problems = explain(caught.value, "$.config")
    assert [p.path for p in problems] == [f"$.config.{field}"], problems
