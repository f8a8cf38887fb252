"""The sidecar: section: defaults, routes from backends:, every fault with its key path and line."""

from __future__ import annotations

import pytest
import yaml

from wafermon import ConfigError, PluginError, Secret
from wafermon.config import load_config
from wafermon_hosts.sidecar import build_sidecar, load_sidecar


def write(tmp_path, sidecar=None, backends=None):
    config = {
        "site_id": "fab1",
        "sidecar": sidecar or {},
        "backends": backends if backends is not None else [{"name": "a", "type": "collect"}],
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def problems(path, plugins) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_sidecar(load_config(path), plugins)
    return [str(p) for p in info.value.problems]


def test_defaults(tmp_path, sc_plugins):
    parts = build_sidecar(load_config(write(tmp_path)), sc_plugins)
    s = parts.settings
    assert s.listen == "127.0.0.1:17000"
    assert parts.spool_dir == tmp_path / "data" / "spool"  # next to the config file
    assert s.spool.dir == parts.spool_dir
    assert (s.spool.max_bytes, s.spool.segment_bytes) == (2**30, 64 * 2**20)
    assert parts.dead_letter_dir == tmp_path / "data" / "dead-letter"
    assert (s.tokens.ingest, s.tokens.read, s.insecure) == ([], [], False)
    assert (s.max_body_bytes, s.max_batch_events) == (16 * 2**20, 10_000)
    r = s.retry
    assert (r.timeout, r.base_delay, r.max_delay) == (30.0, 0.2, 30.0)
    assert (r.failure_threshold, r.open_seconds) == (5, 30.0)
    assert s.drain_timeout == 10.0
    assert s.tls is None
    assert s.tracing.enabled is False
    assert [p.name for p in parts.routes] == ["a"]


def test_values_are_parsed_like_every_other_setting(tmp_path, sc_plugins):
    (tmp_path / "cert.pem").write_text("x")
    (tmp_path / "key.pem").write_text("x")
    sidecar = {
        "listen": "0.0.0.0:17443",
        "spool": {"dir": "spool", "max_bytes": "10GiB", "segment_bytes": "16MiB"},
        "tokens": {"ingest": "sdk-token", "read": "ops-token"},
        "max_body_bytes": "1MiB",
        "max_batch_events": 500,
        "retry": {"timeout": "5s", "base_delay": "50ms", "failure_threshold": 2},
        "dead_letter_dir": "/var/tmp/wafermon-dead",
        "drain_timeout": "1m",
        "tls": {"cert": "cert.pem", "key": "key.pem"},
    }
    parts = build_sidecar(load_config(write(tmp_path, sidecar)), sc_plugins)
    s = parts.settings
    assert parts.spool_dir == tmp_path / "spool"
    assert parts.dead_letter_dir.as_posix() == "/var/tmp/wafermon-dead"
    assert (s.spool.max_bytes, s.spool.segment_bytes) == (10 * 2**30, 16 * 2**20)
    assert s.tokens.ingest == [Secret("sdk-token")]
    assert "sdk-token" not in repr(s)
    assert (s.max_body_bytes, s.max_batch_events, s.drain_timeout) == (2**20, 500, 60.0)
    policy = s.retry.policy()
    assert (policy.timeout_s, policy.base_delay_s, policy.failure_threshold) == (5.0, 0.05, 2)
    assert (policy.max_delay_s, policy.open_seconds) == (30.0, 30.0)
    assert s.tls.cert == tmp_path / "cert.pem"


def test_every_enabled_backend_is_routed_by_priority_with_its_fallback(tmp_path, sc_plugins):
    backends = [
        {"name": "archive", "type": "filesystem", "priority": 3, "config": {"root": "fs"}},
        {"name": "gw", "type": "collect", "priority": 1, "fallback": "archive"},
        {"name": "off", "type": "collect", "enabled": False},
        {"name": "b", "type": "collect", "priority": 2},
    ]
    parts = build_sidecar(load_config(write(tmp_path, backends=backends)), sc_plugins)
    assert [(p.name, p.priority, p.fallback) for p in parts.routes] == [
        ("gw", 1, "archive"),
        ("b", 2, None),
        ("archive", 3, None),
    ]
    assert parts.types == {"gw": "collect", "archive": "filesystem", "b": "collect"}
    sc = load_sidecar(load_config(write(tmp_path, backends=backends)), sc_plugins)
    (gw,) = [r for r in sc.routes if r.name == "gw"]
    assert gw.fallback is sc.emitters["archive"]  # the fallback's own emitter instance


def test_sidecar_backends_limits_routing_and_a_fallback_need_not_be_routed(tmp_path, sc_plugins):
    backends = [
        {"name": "gw", "type": "collect", "fallback": "quarantine"},
        {"name": "quarantine", "type": "filesystem", "config": {"root": "q"}},
        {"name": "other", "type": "collect"},
    ]
    path = write(tmp_path, {"backends": ["gw"]}, backends)
    parts = build_sidecar(load_config(path), sc_plugins)
    assert [p.name for p in parts.routes] == ["gw"]
    assert sorted(parts.emitters) == ["gw", "quarantine"]


def test_sidecar_backends_must_name_enabled_backends(tmp_path, sc_plugins):
    backends = [
        {"name": "a", "type": "collect"},
        {"name": "b", "type": "collect", "enabled": False},
    ]
    found = problems(write(tmp_path, {"backends": ["a", "b", "zz"]}, backends), sc_plugins)
    assert found == [
        "sidecar.backends[1] (line 5): disabled backend named 'b' under backends",
        "sidecar.backends[2] (line 6): no backend named 'zz' under backends",
    ]


def test_a_sidecar_without_backends_is_refused(tmp_path, sc_plugins):
    (found,) = problems(write(tmp_path, backends=[]), sc_plugins)
    assert found.startswith("backends (line 3): the sidecar routes to no backend")
    off = [{"name": "a", "type": "collect", "enabled": False}]
    (found,) = problems(write(tmp_path, backends=off), sc_plugins)
    assert "routes to no backend" in found


def test_faults_are_reported_together_with_paths_and_lines(tmp_path, sc_plugins):
    sidecar = {
        "spool": {"max_bytes": "lots"},
        "retry": {"failure_threshold": "x"},
        "drain_timeout": "-1s",
        "colour": "blue",
    }
    assert problems(write(tmp_path, sidecar), sc_plugins) == [
        "sidecar.spool.max_bytes (line 4): expected a size such as 1048576, 512KiB, 64MiB or "
        "1GB, got 'lots'",
        "sidecar.retry.failure_threshold (line 6): expected an integer, got 'x'",
        "sidecar.drain_timeout (line 7): expected a duration such as 30, 500ms, 30s, 5m, 1h or "
        "2d, got '-1s'",
        "sidecar.colour (line 8): unknown field",
    ]


def test_values_are_checked_once_the_shape_is_right(tmp_path, sc_plugins):
    (found,) = problems(write(tmp_path, {"listen": "nowhere"}), sc_plugins)
    assert found.startswith("sidecar.listen (line 3): expected HOST:PORT")
    (found,) = problems(write(tmp_path, {"spool": {"segment_bytes": 0}}), sc_plugins)
    assert found == "sidecar.spool.segment_bytes (line 4): must be greater than 0, got 0"


def test_sizes_that_cannot_work_together_are_refused(tmp_path, sc_plugins):
    sidecar = {"max_body_bytes": "48MiB", "spool": {"max_bytes": "100MiB"}}
    found = problems(write(tmp_path, sidecar), sc_plugins)
    assert found[0].startswith("sidecar.max_body_bytes (line 3): must be at most 33554432 bytes")
    assert found[1].startswith(
        "sidecar.spool.max_bytes (line 5): must be at least spool.segment_bytes + 2 x "
        "max_body_bytes = 167772160 bytes"
    )


def test_tls_files_must_exist_and_backend_settings_are_checked(tmp_path, sc_plugins):
    sidecar = {"tls": {"cert": "missing.pem", "key": "missing.key"}}
    backends = [{"name": "fs", "type": "filesystem", "config": {"rooot": "x"}}]
    found = problems(write(tmp_path, sidecar, backends), sc_plugins)
    assert found[0] == f"sidecar.tls.cert (line 4): no such file: {tmp_path / 'missing.pem'}"
    assert found[1].startswith("sidecar.tls.key (line 5): no such file")
    assert found[2:] == [
        "backends[0].config.root (line 9): required field missing",
        "backends[0].config.rooot (line 10): unknown field; did you mean 'root'?",
    ]


def test_a_missing_plugin_names_the_entry(tmp_path, sc_plugins):
    with pytest.raises(PluginError, match=r"backends\[0\] 'x': no installed plugin provides"):
        build_sidecar(
            load_config(write(tmp_path, backends=[{"name": "x", "type": "s3"}])), sc_plugins
        )


def test_listen_override_is_checked(tmp_path, sc_plugins):
    loaded = load_config(write(tmp_path))
    assert build_sidecar(loaded, sc_plugins, listen="127.0.0.1:1").settings.listen == "127.0.0.1:1"
    with pytest.raises(ConfigError) as info:
        build_sidecar(loaded, sc_plugins, listen="bad")
    assert str(info.value.problems[0]).startswith("--listen: expected HOST:PORT")
