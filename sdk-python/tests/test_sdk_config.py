"""Settings: defaults, file, environment and arguments, and errors that name the setting."""

from __future__ import annotations

import pytest
from sdk_helpers import write_yaml

import wafermon_sdk
from wafermon import ConfigError
from wafermon_sdk import Client, load_settings


def test_defaults():
    settings = load_settings(environ={})
    assert settings.mode == "sidecar"
    assert settings.sidecar_url == "http://127.0.0.1:17000"
    assert settings.queue_size == 10_000
    assert settings.queue_full == "block"
    assert settings.token is None


def test_a_misspelt_mode_fails_at_initialize_naming_the_variable(monkeypatch):
    monkeypatch.setenv("WAFERMON_MODE", "sidcar")
    with pytest.raises(ConfigError) as info:
        wafermon_sdk.initialize()
    assert str(info.value) == "WAFERMON_MODE: must be one of sidecar, direct, both, got 'sidcar'"


def test_every_bad_variable_is_reported_at_once():
    environ = {
        "WAFERMON_QUEUE_SIZE": "lots",
        "WAFERMON_QUEUE_FULL": "wait",
        "WAFERMON_SIDECAR_URL": "sidecar:17000",
        "WAFERMON_SITE_ID": "fab 1",
        "WAFERMON_FLUSH_INTERVAL": "soon",
        "WAFERMON_ENABLE_RETRIES": "maybe",
        "WAFERMON_SPOOL_MAX_BYTES": "1KiB",
    }
    with pytest.raises(ConfigError) as info:
        load_settings(environ=environ)
    found = {p.path: p.message for p in info.value.problems}
    assert found == {
        "WAFERMON_QUEUE_SIZE": "expected an integer, got 'lots'",
        "WAFERMON_QUEUE_FULL": "must be one of block, spool, drop, got 'wait'",
        "WAFERMON_SIDECAR_URL": "expected an http:// or https:// URL such as "
        "http://127.0.0.1:17000, got 'sidecar:17000'",
        "WAFERMON_SITE_ID": "must be 1-64 letters, digits, '.', '_' or '-' starting with a "
        "letter or digit, got 'fab 1'",
        "WAFERMON_FLUSH_INTERVAL": "expected a duration such as 30, 500ms, 30s, 5m, 1h or 2d, "
        "got 'soon'",
        "WAFERMON_ENABLE_RETRIES": "expected true or false, got 'maybe'",
        "WAFERMON_SPOOL_MAX_BYTES": "must be at least 1MiB, got '1KiB'",
    }


def test_file_then_environment_then_arguments(tmp_path):
    yaml_file = write_yaml(
        tmp_path / "sdk.yaml", {"queue_size": 50, "batch_size": 7, "timeout": "3s"}
    )
    settings = load_settings(yaml_file, environ={"WAFERMON_QUEUE_SIZE": "60"}, batch_size=9)
    assert (settings.queue_size, settings.batch_size, settings.timeout) == (60, 9, 3.0)

    toml_file = tmp_path / "sdk.toml"
    toml_file.write_text(
        '[wafermon_sdk]\nmode = "sidecar"\nqueue_full = "drop"\nspool_max_bytes = "64MiB"\n'
    )
    settings = load_settings(toml_file, environ={})
    assert settings.queue_full == "drop"
    assert settings.spool_max_bytes == 64 * 2**20

    settings = load_settings(environ={"WAFERMON_SDK_CONFIG": str(toml_file)})
    assert settings.queue_full == "drop"


def test_file_problems_name_the_file_and_the_key(tmp_path):
    bad = write_yaml(tmp_path / "sdk.yaml", {"mode": "direkt", "queue_sise": 5})
    with pytest.raises(ConfigError) as info:
        load_settings(bad, environ={})
    messages = [str(p) for p in info.value.problems]
    assert messages[0] == f"{bad}: mode: must be one of sidecar, direct, both, got 'direkt'"
    assert messages[1].startswith(f"{bad}: queue_sise: unknown setting (known: batch_size,")

    broken = tmp_path / "sdk.toml"
    broken.write_text("mode = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken, environ={})
    with pytest.raises(ConfigError, match="cannot read settings file"):
        load_settings(tmp_path / "missing.yaml", environ={})


def test_arguments_are_named_as_written():
    with pytest.raises(ConfigError, match=r"^max_retries: must be at least 0, got -1$"):
        Client(max_retries=-1)
    with pytest.raises(
        ConfigError, match="retry_max_delay: must not be less than retry_base_delay"
    ):
        Client(retry_base_delay="2s", retry_max_delay="1s")


def test_direct_mode_needs_a_target(monkeypatch):
    monkeypatch.setenv("WAFERMON_MODE", "direct")
    with pytest.raises(ConfigError) as info:
        wafermon_sdk.initialize()
    assert str(info.value) == (
        "WAFERMON_MODE: 'direct' needs a direct target: WAFERMON_DIRECT_URL "
        "(file:///absolute/path) or a site config file naming the backends (WAFERMON_CONFIG)"
    )
    with pytest.raises(ConfigError, match=r"^mode: 'both' needs a direct target"):
        Client(mode="both")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1/x", "expected file:///absolute/path or s3://bucket/prefix, got"),
        ("file://relative/path", "(file:// and an absolute path), got 'file://relative/path'"),
        ("s3://", "expected file:///absolute/path or s3://bucket/prefix, got 's3://'"),
        ("s3://wafer-events/fab1", "s3:// needs an S3 backend plugin, which does not exist yet"),
    ],
)
def test_a_bad_direct_url_is_named(monkeypatch, url, message):
    monkeypatch.setenv("WAFERMON_MODE", "direct")
    monkeypatch.setenv("WAFERMON_DIRECT_URL", url)
    with pytest.raises(ConfigError) as info:
        wafermon_sdk.initialize()
    assert str(info.value).startswith("WAFERMON_DIRECT_URL: ")
    assert message in str(info.value)


def test_direct_url_and_a_site_config_exclude_each_other(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_settings(
            environ={"WAFERMON_DIRECT_URL": f"file://{tmp_path}", "WAFERMON_CONFIG": "site.yaml"}
        )
    assert str(info.value) == (
        "WAFERMON_DIRECT_URL: set either it or WAFERMON_CONFIG (a site config's backends), not both"
    )


def test_direct_mode_checks_the_site_config_and_its_plugins_at_initialize(tmp_path, monkeypatch):
    monkeypatch.setenv("WAFERMON_MODE", "both")
    site = write_yaml(
        tmp_path / "site.yaml",
        {"site_id": "fab1", "backends": [{"name": "lake", "type": "datalake", "config": {}}]},
    )
    monkeypatch.setenv("WAFERMON_CONFIG", str(site))
    with pytest.raises(ConfigError) as info:
        wafermon_sdk.initialize()
    assert str(info.value).startswith("WAFERMON_CONFIG: ")
    assert "no installed plugin provides emitter type 'datalake'" in str(info.value)

    write_yaml(
        site,
        {
            "site_id": "fab1",
            "backends": [{"name": "fs", "type": "filesystem", "config": {"rot": "x"}}],
        },
    )
    with pytest.raises(ConfigError) as info:
        wafermon_sdk.initialize()
    assert "backends[0].config.rot (line" in str(info.value)
    assert "unknown field" in str(info.value)


def test_the_token_is_never_shown(monkeypatch):
    monkeypatch.setenv("WAFERMON_TOKEN", "s3cr3t-token")
    client = Client()
    assert client.settings.token.reveal() == "s3cr3t-token"
    assert "s3cr3t" not in repr(client.settings)
    assert "s3cr3t" not in str(client.stats())
