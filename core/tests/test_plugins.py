"""Plugin loading: named plugins must work, unnamed broken ones are skipped, clashes are errors."""

from __future__ import annotations

import re
import textwrap
import types
from pathlib import Path

import attrs
import pytest

import wafermon
from wafermon import Emitter, PluginError, hookimpl
from wafermon.plugins import Plugins
from wafermon.testing import RecordingEmitter


def plugin_module(name: str, **hooks) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def registering(type_name: str, cls: type = RecordingEmitter) -> types.ModuleType:
    return plugin_module(
        f"p_{type_name}", register_emitters=lambda register: register(type_name, cls)
    )


def test_registered_types_are_attributed_to_their_plugin(plugins):
    plugins.register(registering("memory"), "memory-plugin", version="1.2")
    provided = plugins.types("emitter")["memory"]
    assert provided.cls is RecordingEmitter
    assert provided.plugin == "memory-plugin"
    [info] = plugins.info()
    assert info.provides == ["emitter:memory"]
    assert info.hooks == ["register_emitters"]
    assert info.version == "1.2"


def test_a_class_registered_by_name_is_imported_on_first_use(plugins, tmp_path, monkeypatch):
    (tmp_path / "lazy_backend.py").write_text(
        "from wafermon import Emitter\nclass Lazy(Emitter):\n    async def emit(self, batch): pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.register(registering("lazy", cls="lazy_backend:Lazy"), "lazy-plugin")
    import sys

    assert "lazy_backend" not in sys.modules  # registering did not import it
    provided = plugins.require("emitter", "lazy", needed_by="test")
    assert provided.cls.__name__ == "Lazy"
    assert "lazy_backend" in sys.modules


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no_such_module_x:Thing", "plugin 'bad': cannot import no_such_module_x:Thing: "),
        ("wafermon:Event", "plugin 'bad': wafermon:Event is not a subclass of Emitter"),
    ],
)
def test_a_class_reference_that_does_not_import_names_the_plugin(plugins, ref, message):
    plugins.register(registering("bad", cls=ref), "bad")
    provided = plugins.types("emitter")["bad"]
    with pytest.raises(PluginError, match=re.escape(message)):
        provided.cls  # noqa: B018 - the import happens on access


def test_a_string_that_is_no_class_reference_marks_the_plugin_broken(plugins):
    plugins.register(registering("bad", cls="not a reference"), "bad")
    assert plugins.types("emitter") == {}
    [info] = plugins.info()
    assert "'not a reference' is not a 'module:Class' reference" in info.error


def test_two_plugins_registering_one_type_is_an_error_naming_both(plugins):
    plugins.register(registering("memory"), "first")
    plugins.register(registering("memory"), "second")
    plugins.register(registering("other"), "third")
    assert list(plugins.types("emitter")) == ["other"]  # neither plugin wins the clash
    with pytest.raises(PluginError, match="'first' and plugin 'second'; uninstall one"):
        plugins.require("emitter", "memory", needed_by="site.yaml: backends[0] 'm'")
    infos = {i.name: i for i in plugins.info()}
    assert "registered by both" in infos["first"].warnings[0]
    assert infos["third"].warnings == []


def test_registering_a_class_of_the_wrong_kind_marks_the_plugin_broken(plugins):
    plugins.register(registering("memory", cls=dict), "wrong")
    assert plugins.types("emitter") == {}
    assert "not a subclass of Emitter" in plugins.info()[0].error


def test_misspelt_hook_marks_the_plugin_broken(plugins):
    plugins.register(plugin_module("typo", register_emiters=lambda register: None), "typo")
    [info] = plugins.info()
    assert "register_emiters" in info.error
    assert not plugins.pm.has_plugin("typo")


def test_missing_type_error_lists_what_is_installed(plugins):
    plugins.register(registering("memory"), "memory")
    with pytest.raises(PluginError) as info:
        plugins.require("emitter", "s3", needed_by="site.yaml: backends[2] 'archive'")
    message = str(info.value)
    assert message.startswith("site.yaml: backends[2] 'archive': no installed plugin provides")
    assert "installed emitter types: memory" in message
    assert "wafermon-backend-s3" in message


@pytest.fixture
def installed_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two real installed distributions with entry points: one works, one fails to import."""
    for name, body in {
        "goodplug": """
            from wafermon import Emitter, hookimpl
            class Good(Emitter):
                async def emit(self, batch): pass
            @hookimpl
            def register_emitters(register):
                register("good", Good)
        """,
        "badplug": "import module_that_does_not_exist\n",
    }.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
        dist = tmp_path / f"wafermon_backend_{name}-0.3.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: wafermon-backend-{name}\nVersion: 0.3\n"
        )
        (dist / "entry_points.txt").write_text(f"[wafermon]\n{name} = {name}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("WAFERMON_LOAD_PLUGINS", raising=False)
    return tmp_path


def test_unnamed_broken_plugin_is_reported_and_skipped(installed_plugins, caplog):
    plugins = Plugins.discover()
    infos = {i.name: i for i in plugins.info()}
    assert infos["goodplug"].provides == ["emitter:good"]
    assert infos["goodplug"].distribution == "wafermon-backend-goodplug"
    assert "ModuleNotFoundError" in infos["badplug"].error
    assert "plugin 'badplug' failed to load and is skipped" in caplog.text
    assert plugins.types("emitter")["good"].plugin == "goodplug"


def test_a_broken_plugin_the_config_needs_is_an_error_with_its_reason(installed_plugins):
    plugins = Plugins.discover()
    with pytest.raises(PluginError, match=r"plugin 'badplug' failed to load: ModuleNotFoundError"):
        plugins.require("emitter", "badplug", needed_by="site.yaml: backends[0] 'x'")


def test_load_plugins_variable_limits_discovery(installed_plugins, monkeypatch):
    monkeypatch.setenv("WAFERMON_LOAD_PLUGINS", "goodplug")
    assert [i.name for i in Plugins.discover().info()] == ["goodplug"]
    monkeypatch.setenv("WAFERMON_LOAD_PLUGINS", "")
    assert Plugins.discover().info() == []


def test_transforms_chain_in_pluggy_call_order(plugins, valid):
    def tag(label):
        def transform_events(events):
            return [
                attrs.evolve(
                    e, metadata={**e.metadata, "seen": [*e.metadata.get("seen", []), label]}
                )
                for e in events
            ]

        return plugin_module(label, transform_events=transform_events)

    plugins.register(tag("first"), "first")
    plugins.register(tag("second"), "second")
    plugins.register(plugin_module("noop", transform_events=lambda events, host: None), "noop")
    event = wafermon.structure_event(valid)
    [out] = plugins.transform_events([event], host="cli", site_id="fab1")
    assert out.metadata["seen"] == ["second", "first"]  # last registered runs first, as in pluggy


def test_whether_plugins_transform_follows_registration(plugins, valid):
    """Asked on every ingest request, so kept between registrations: never stale."""
    assert not plugins.transforms_events
    plugins.register(plugin_module("t", transform_events=lambda events: events[:0]), "t")
    assert plugins.transforms_events
    assert plugins.transform_events([wafermon.structure_event(valid)], host="x", site_id="f") == []
    plugins.unregister("t")
    assert not plugins.transforms_events


def test_routes_are_collected_per_host(plugins):
    plugins.register(
        plugin_module("r", register_routes=lambda host: ["/v1/x/r"] if host == "gateway" else None),
        "r",
    )
    assert plugins.routes("gateway") == ["/v1/x/r"]
    assert plugins.routes("sidecar") == []


def test_hook_tracing_writes_to_stderr(monkeypatch, capsys):
    monkeypatch.setenv("WAFERMON_TRACE_HOOKS", "1")
    traced = Plugins()
    traced.register(registering("memory"), "memory")
    traced.routes("gateway")
    traced.types("emitter")
    traced.transform_events([], host="cli", site_id="fab1")
    err = capsys.readouterr().err
    assert "register_routes" in err
    assert "wafermon hook: register_emitters [memory]" in err
    monkeypatch.setenv("WAFERMON_TRACE_HOOKS", "0")
    quiet = Plugins()
    quiet.register(registering("memory"), "memory")
    quiet.routes("gateway")
    assert capsys.readouterr().err == ""


def test_stream_consumers_are_a_component_kind():
    """register_consumers types are checked against StreamConsumer and found by kind."""
    import wafermon
    from wafermon import StreamBatch, StreamConsumer

    class Queue(StreamConsumer):
        async def fetch(self, max_messages, timeout):
            return StreamBatch()

        async def lag(self):
            return {}

    class Plug:
        @wafermon.hookimpl
        def register_consumers(self, register):
            register("queue", Queue)

    plugins = Plugins()
    plugins.register(Plug(), "queueplug")
    assert plugins.require("consumer", "queue", needed_by="test").cls is Queue
    assert "consumer:queue" in plugins.info()[0].provides


async def test_stream_batch_settles_through_the_consumers_callables():
    from wafermon import StreamBatch, StreamMessage

    calls = []

    async def commit():
        calls.append("commit")

    async def dead(message, reason):
        calls.append((message.where, reason))

    message = StreamMessage(b"{}", "t/0@1")
    batch = StreamBatch([message], on_commit=commit, on_dead_letter=dead)
    await batch.dead_letter(message, "bad")
    await batch.commit()
    assert calls == [("t/0@1", "bad"), "commit"]
    await StreamBatch().commit()  # an empty batch has nothing to commit


def test_hooks_run_through_pluggy_so_wrappers_see_every_call(plugins, valid):
    """Registration and transform hooks are called through pluggy (one plugin at a time), never
    by calling an implementation's function directly: a hook wrapper sees each call."""
    seen = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def register_emitters(self, register):
            seen.append("register_emitters")
            return (yield)

        @hookimpl(wrapper=True)
        def transform_events(self, events):
            seen.append(f"transform_events {len(events)}")
            return (yield)

    plugins.register(registering("memory"), "memory")
    plugins.register(registering("other"), "other")
    plugins.register(plugin_module("t", transform_events=lambda events: events[:1]), "t")
    plugins.register(Wrapper(), "wrapper")
    assert set(plugins.types("emitter")) == {"memory", "other"}
    assert plugins.types("emitter")["other"].plugin == "other"
    event = wafermon.structure_event(valid)
    assert plugins.transform_events([event, event], host="cli", site_id="fab1") == [event]
    assert seen == ["register_emitters", "register_emitters", "transform_events 2"]
    info = {i.name: i for i in plugins.info()}
    assert info["wrapper"].provides == []
    assert info["wrapper"].error is None


def test_registration_protocols_type_the_register_argument():
    """The Register* protocols describe the callable the core passes (checked by pyright in CI)."""
    from wafermon.hookspecs import RegisterEmitter

    got = []

    def register(type_name: str, cls: type[Emitter] | str) -> None:
        got.append((type_name, cls))

    typed: RegisterEmitter = register
    typed("memory", RecordingEmitter)
    assert got == [("memory", RecordingEmitter)]
