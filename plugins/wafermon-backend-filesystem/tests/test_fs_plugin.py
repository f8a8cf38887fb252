"""The plugin as the core sees it: registration, site config, path confinement."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import pytest

import wafermon_backend_filesystem.plugin
from wafermon import ConfigError, EventDecodeError, PermanentError, decode_event, to_json_dict
from wafermon.config import load_config
from wafermon.plugins import Plugins
from wafermon_backend_filesystem import FilesystemEmitter, FilesystemQueryAdapter
from wafermon_backend_filesystem.layout import partition_dir


@pytest.fixture
def plugins() -> Plugins:
    p = Plugins()
    p.register(wafermon_backend_filesystem.plugin, "filesystem")
    return p


def test_registers_emitter_and_query_adapter(plugins):
    assert plugins.types("emitter")["filesystem"].cls is FilesystemEmitter
    assert plugins.types("query_adapter")["filesystem"].cls is FilesystemQueryAdapter
    (info,) = plugins.info()
    assert info.error is None
    assert sorted(info.provides) == ["emitter:filesystem", "query_adapter:filesystem"]


def test_built_from_site_config(tmp_path, plugins):
    path = tmp_path / "site.yaml"
    path.write_text(
        "site_id: fab1\n"
        "backends:\n"
        "  - name: backup\n"
        "    type: filesystem\n"
        "    config: {root: ./events, rotate_bytes: 1MiB, rotate_after: 10m}\n"
        "sources:\n"
        "  - name: backup\n"
        "    type: filesystem\n"
        "    config: {root: ./events}\n"
    )
    loaded = load_config(path)
    (emitter,) = loaded.build("backends", plugins)
    assert isinstance(emitter, FilesystemEmitter)
    assert emitter.name == "backup"
    assert emitter.settings.root == tmp_path / "events"
    assert emitter.settings.rotate_bytes == 2**20
    assert emitter.settings.rotate_after == 600
    assert emitter.settings.compress is True
    assert emitter.settings.fsync is True
    (adapter,) = loaded.build("sources", plugins)
    assert isinstance(adapter, FilesystemQueryAdapter)
    assert adapter.settings.root == tmp_path / "events"


def test_bad_setting_names_its_key_path_and_line(tmp_path, plugins):
    path = tmp_path / "site.yaml"
    path.write_text(
        "site_id: fab1\n"
        "backends:\n"
        "  - name: backup\n"
        "    type: filesystem\n"
        "    config:\n"
        "      root: ./events\n"
        "      rotate_bytes: lots\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path).build("backends", plugins)
    assert "backends[0].config.rotate_bytes (line 7)" in str(info.value)


def test_missing_root_is_a_config_error(tmp_path, plugins):
    path = tmp_path / "site.yaml"
    path.write_text("site_id: fab1\nbackends: [{name: backup, type: filesystem}]\n")
    with pytest.raises(ConfigError, match=r"backends\[0\]\.config\.root"):
        load_config(path).build("backends", plugins)


def test_partition_dir_refuses_to_leave_root(tmp_path: Path):
    assert partition_dir(tmp_path, "fab1", date(2026, 11, 28)) == tmp_path / "fab1/2026-11-28"
    with pytest.raises(PermanentError, match=r"site_id '\.\./\.\./etc' would write outside root"):
        partition_dir(tmp_path, "../../etc", date(2026, 11, 28))
    with pytest.raises(PermanentError, match="would write outside root"):
        partition_dir(tmp_path, "/etc", date(2026, 11, 28))


def test_event_with_escaping_site_id_is_rejected_on_decode(make_event):
    wire = to_json_dict(make_event())
    wire["site_id"] = "../../etc"
    with pytest.raises(EventDecodeError, match=r"\$\.site_id"):
        decode_event(orjson.dumps(wire))
