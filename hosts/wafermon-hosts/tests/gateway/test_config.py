"""The gateway: section: defaults, and every fault reported with its key path and line."""

from __future__ import annotations

import pytest

from wafermon import ConfigError, Secret
from wafermon.config import load_config
from wafermon_hosts.gateway import build_gateway


def problems(path, plugins) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_gateway(load_config(path), plugins)
    return [str(p) for p in info.value.problems]


def test_defaults(write_config, plugins):
    parts = build_gateway(load_config(write_config()), plugins)
    s = parts.settings
    assert (s.listen, s.store, s.sources) == ("127.0.0.1:18000", "managed", None)
    assert (s.tokens.ingest, s.tokens.read, s.tokens.admin, s.insecure) == ([], [], [], False)
    assert s.health_ttl == 5.0
    assert s.max_body_bytes == 16 * 2**20
    assert s.max_batch_events == 10_000
    assert s.tls is None
    assert (s.source_timeout, s.retention_interval) == (5.0, 600.0)
    assert (s.tracing.enabled, s.tracing.otlp_endpoint) == (False, None)
    assert parts.store_type == "sql"
    assert parts.sources == {}


def test_values_are_parsed_like_every_other_setting(write_config, plugins, tmp_path):
    (tmp_path / "cert.pem").write_text("x")
    (tmp_path / "key.pem").write_text("x")
    (tmp_path / "old.token").write_text("r-old\n")
    gateway = {
        "listen": "0.0.0.0:8443",
        "tokens": {"ingest": "i-token", "read": ["r-token", {"file": "old.token"}]},
        "max_body_bytes": "1MiB",
        "source_timeout": "500ms",
        "retention_interval": "1h",
        "tls": {"cert": "cert.pem", "key": "key.pem"},
        "tracing": {"enabled": "yes"},
    }
    s = build_gateway(load_config(write_config(gateway=gateway)), plugins).settings
    assert s.tokens.ingest == [Secret("i-token")]
    assert s.tokens.read == [Secret("r-token"), Secret("r-old")]  # a file's newline dropped
    assert "i-token" not in repr(s)
    assert (s.max_body_bytes, s.source_timeout, s.retention_interval) == (2**20, 0.5, 3600)
    assert s.tls.cert == tmp_path / "cert.pem"  # relative to the config file
    assert s.tracing.enabled is True


def test_sources_default_to_every_enabled_source(write_config, plugins, tmp_path):
    sources = [
        {"name": "a", "type": "filesystem", "config": {"root": str(tmp_path)}},
        {"name": "b", "type": "filesystem", "enabled": False, "config": {"root": str(tmp_path)}},
    ]
    assert list(build_gateway(load_config(write_config(sources=sources)), plugins).sources) == ["a"]
    path = write_config(sources=sources, gateway={"sources": []})
    assert build_gateway(load_config(path), plugins).sources == {}


def test_store_must_name_an_enabled_managed_store(write_config, plugins, tmp_path):
    assert problems(write_config(gateway={"store": "db"}), plugins) == [
        "gateway.store (line 3): no backend named 'db' (backends: managed)"
    ]
    fs = [{"name": "managed", "type": "filesystem", "config": {"root": str(tmp_path)}}]
    (found,) = problems(write_config(backends=fs), plugins)
    assert found.startswith("gateway.store (line 2): backend 'managed' has type 'filesystem'")
    assert "managed store types installed: flaky-sql, sql" in found
    off = [{"name": "managed", "type": "sql", "enabled": False, "config": {"url": "x"}}]
    assert problems(write_config(backends=off), plugins) == [
        "gateway.store (line 2): backend 'managed' is disabled"
    ]


def test_every_problem_is_reported_at_once(write_config, plugins, tmp_path):
    gateway = {
        "sources": ["archive", "managed"],
        "store": "db",
        "tls": {"cert": "missing.pem", "key": "missing.key"},
    }
    found = problems(write_config(gateway=gateway), plugins)
    assert [p.split(":")[0] for p in found] == [
        "gateway.tls.cert (line 8)",
        "gateway.tls.key (line 9)",
        "gateway.store (line 6)",
        "gateway.sources[0] (line 4)",
        "gateway.sources[1] (line 5)",
    ]
    assert "no source named 'archive'" in found[3]
    assert "'managed' names the managed store" in found[4]


@pytest.mark.parametrize(
    ("gateway", "expected"),
    [
        ({"listen": "18000"}, "gateway.listen (line 3): expected HOST:PORT"),
        ({"max_body_bytes": "lots"}, "gateway.max_body_bytes (line 3): expected a size"),
        ({"max_batch_events": 0}, "gateway.max_batch_events (line 3): must be greater than 0"),
        ({"source_timeout": "soon"}, "gateway.source_timeout (line 3): expected a duration"),
        ({"tokens": {"write": "x"}}, "gateway.tokens.write (line 4): unknown field"),
        ({"colour": "blue"}, "gateway.colour (line 3): unknown field"),
        ({"tls": {"cert": "c.pem"}}, "gateway.tls.key"),
    ],
)
def test_bad_values_name_key_and_line(write_config, plugins, gateway, expected):
    (found,) = problems(write_config(gateway=gateway), plugins)
    assert found.startswith(expected), found


def test_a_bad_store_setting_points_into_backends(write_config, plugins):
    backends = [{"name": "managed", "type": "sql", "config": {"uri": "x"}}]
    found = problems(write_config(backends=backends), plugins)
    assert any(p.startswith("backends[0].config") for p in found), found
