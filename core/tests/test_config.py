"""Site config: interpolation, errors with key path and line, secrets that never show."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import attrs
import cattrs
import pytest

from wafermon import ByteSize, ConfigError, Emitter, Seconds, Secret, hookimpl, strip_credentials
from wafermon.config import (
    load_config,
    make_config_converter,
    mask_secrets,
    parse_bytes,
    parse_seconds,
)
from wafermon.errors import explain

SITE = """\
site_id: fab1
gateway:
  listen: "127.0.0.1:18000"
  tokens: {ingest: "${INGEST_TOKEN}", read: "${READ_TOKEN:-}"}
backends:
  - {name: managed, type: sql, priority: 1,
     config: {url: "postgresql+asyncpg://wafer:${PGPASS:-s3cret}@127.0.0.1/wafer"}}
  - name: backup
    type: memory
    priority: "2"
    config:
      root: ./data/events
      rotate: 64MiB
      api_key: "${API_KEY:-abc123}"
  - {name: archive, type: s3, enabled: false, config: {bucket: wafer-events}}
sources:
  - {name: archive, type: s3, config: {bucket: wafer-events}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path, environ=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ or {})
    return [str(p) for p in info.value.problems]


def test_loads_and_interpolates(tmp_path):
    loaded = load_config(write(tmp_path, SITE), {"INGEST_TOKEN": "tok-1", "PGPASS": "pw"})
    site = loaded.site
    assert site.site_id == "fab1"
    assert [b.name for b in site.backends] == ["managed", "backup", "archive"]
    assert site.backends[1].priority == 2  # "2" from YAML is accepted as an integer
    assert site.backends[2].enabled is False
    assert site.gateway["tokens"] == {"ingest": "tok-1", "read": ""}
    assert "wafer:pw@" in site.backends[0].config["url"]
    assert [e.name for _, e in loaded.enabled("backends")] == ["managed", "backup"]


def test_missing_variable_names_key_path_and_line(tmp_path):
    assert problems(write(tmp_path, SITE)) == [
        "gateway.tokens.ingest (line 4): environment variable INGEST_TOKEN is not set"
    ]


def test_default_replaces_an_empty_variable_as_in_the_shell(tmp_path):
    text = "site_id: fab1\ngateway: {a: '${E:-dflt}', b: '${E}', c: '${U:-}'}\n"
    loaded = load_config(write(tmp_path, text), {"E": ""})
    assert loaded.site.gateway == {"a": "dflt", "b": "", "c": ""}


def test_masking_by_key_name_url_and_declared_secret_settings(tmp_path, plugins):
    plugins.register(MemoryPlugin(), "memory")
    text = """\
site_id: fab1
backends:
  - name: m
    type: memory
    config:
      root: ./x
      api_key: plain-looking
      Api-Key: hyphenated
      author: Ada
      dsn: "postgresql://u:p@ss/w0rd@db.example/wafer"
"""
    masked = load_config(write(tmp_path, text), {}).masked(plugins)["backends"][0]["config"]
    assert masked["api_key"] == masked["Api-Key"] == "***"
    assert masked["author"] == "Ada"
    assert masked["dsn"] == "postgresql://***@db.example/wafer"


def test_secret_typed_setting_is_masked_whatever_its_name(tmp_path, plugins):
    @attrs.frozen
    class DsnSettings:
        dsn: Secret

    class DsnEmitter(Emitter):
        Settings = DsnSettings

        async def emit(self, batch):
            pass

    class Plugin:
        @hookimpl
        def register_emitters(self, register):
            register("dsn", DsnEmitter)

    plugins.register(Plugin(), "dsn")
    text = "site_id: fab1\nbackends: [{name: d, type: dsn, config: {dsn: 'host=db password=x'}}]\n"
    loaded = load_config(write(tmp_path, text), {})
    assert loaded.masked(plugins)["backends"][0]["config"]["dsn"] == "***"
    assert loaded.masked()["backends"][0]["config"]["dsn"] == "host=db password=x"


def test_dollar_dollar_is_a_literal_dollar(tmp_path):
    loaded = load_config(
        write(tmp_path, "site_id: fab1\ngateway: {note: 'costs $$5 ${X:-a}'}\n"), {}
    )
    assert loaded.site.gateway["note"] == "costs $5 a"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "site_id: fab1\nbackends:\n  - {name: a, type: x, priority: high}\n",
            "backends[0].priority (line 3): expected an integer, got 'high'",
        ),
        ("site_id: fab1\nbakends: []\n", "bakends (line 2): unknown field"),
        ("site_id: ../etc\n", "site_id (line 1): not a valid site id: '../etc'"),
        ("backends: []\n", "site_id (line 1): required field missing"),
        (
            "site_id: fab1\nbackends:\n  - name: a\n    type: x\n  - name: a\n    type: y\n",
            "backends[1].name (line 5): name 'a' is used twice in backends",
        ),
        (
            "site_id: fab1\nbackends:\n  - {name: Bad Name, type: x}\n",
            "backends[0].name (line 3): must be 1-64 lower-case letters, digits, '_' or '-', got 'Bad Name'",
        ),
        (
            "site_id: fab1\nbackends: {name: a}\n",
            "backends (line 2): expected a list, got a mapping",
        ),
        (
            "site_id: fab1\nbackends: [x]\n",
            "backends[0] (line 2): expected a mapping, got a string",
        ),
        ("site_id: [unclosed\n", "$ (line 2): not valid YAML"),
        ("- just a list\n", "$ (line 1): expected a mapping"),
    ],
)
def test_errors_name_the_key_path_and_line(tmp_path, text, expected):
    found = problems(write(tmp_path, text))
    assert any(expected in p for p in found), found


def test_every_problem_is_reported_at_once(tmp_path):
    text = "site_id: fab1\nbackends:\n  - {name: a, type: x, priority: high}\n  - {type: y}\n"
    found = problems(write(tmp_path, text))
    assert any(p.startswith("backends[0].priority") for p in found)
    assert any(p.startswith("backends[1].name") for p in found)


def test_unreadable_file_is_a_config_error(tmp_path):
    assert "cannot read config file" in problems(tmp_path / "missing.yaml")[0]


@attrs.frozen
class MemorySettings:
    root: Path
    rotate: ByteSize = ByteSize(1024)
    flush_every: Seconds = Seconds(1.0)
    api_key: Secret | None = None


class MemoryEmitter(Emitter):
    Settings = MemorySettings

    async def emit(self, batch):
        pass


class MemoryPlugin:
    @hookimpl
    def register_emitters(self, register):
        register("memory", MemoryEmitter)


def test_plugin_settings_are_structured_with_paths_sizes_and_secrets(tmp_path, plugins):
    plugins.register(MemoryPlugin(), "memory")
    text = SITE.replace("type: sql", "type: memory").replace(
        "url:", "root: ./x, flush_every: 5m, api_key:"
    )
    loaded = load_config(write(tmp_path, text), {"INGEST_TOKEN": "t"})
    managed, backup = loaded.build("backends", plugins)
    assert managed.settings.root == tmp_path / "x"  # relative to the config file
    assert managed.settings.flush_every == 300
    assert backup.settings.rotate == 64 * 2**20
    assert backup.settings.api_key.reveal() == "abc123"
    assert "abc123" not in repr(backup.settings)


def test_check_reports_bad_plugin_settings_with_line_and_missing_plugins(tmp_path, plugins):
    plugins.register(MemoryPlugin(), "memory")
    text = SITE.replace("rotate: 64MiB", "rotate: lots").replace("root: ./data/events", "rooot: x")
    found = load_config(write(tmp_path, text), {"INGEST_TOKEN": "t"}).check(plugins)
    assert any(
        "backends[1].config.rotate (line 13): expected a size such as 1048576, 512KiB, 64MiB" in p
        for p in found
    ), found
    assert any("backends[1].config.rooot (line 12): unknown field" in p for p in found), found
    assert any("backends[1].config.root (line 11): required field missing" in p for p in found), (
        found
    )
    assert any(
        "backends[0] 'managed': no installed plugin provides emitter type 'sql'" in p for p in found
    ), found
    assert any(
        "sources[0] 'archive': no installed plugin provides query adapter" in p for p in found
    )
    assert not any("backends[2]" in p for p in found)  # disabled: not checked


def test_masked_config_hides_tokens_passwords_and_keys(tmp_path):
    loaded = load_config(write(tmp_path, SITE), {"INGEST_TOKEN": "tok-1"})
    masked = loaded.masked()
    assert masked["gateway"]["tokens"] == {"ingest": "***", "read": ""}
    assert masked["backends"][0]["config"]["url"] == "postgresql+asyncpg://***@127.0.0.1/wafer"
    assert masked["backends"][1]["config"]["api_key"] == "***"
    assert masked["backends"][1]["config"]["root"] == "./data/events"
    assert "tok-1" not in repr(masked)


def test_secret_never_shows_in_logs(caplog):
    secret = Secret("hunter2")
    logging.getLogger("t").warning("value %s %r %s", secret, secret, [secret])
    assert "hunter2" not in caplog.text
    assert mask_secrets({"x": secret}) == {"x": "***"}


@pytest.mark.parametrize(
    ("text", "value"),
    [("1024", 1024), ("512KiB", 512 * 1024), ("1GiB", 2**30), ("10MB", 10**7), (2048, 2048)],
)
def test_sizes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h", 3600), ("2d", 172800), (7, 7)],
)
def test_durations(text, value):
    assert parse_seconds(text) == value


@pytest.mark.parametrize("text", ["lots", "-1s", "5 parsecs", True])
def test_bad_durations(text):
    with pytest.raises(ValueError, match=r"duration|negative|boolean"):
        parse_seconds(text)


@attrs.frozen
class WithSecrets:
    password: Secret | None = None
    tokens: list[Secret] = attrs.Factory(list)


def structure_problems(conv, value):
    with pytest.raises(cattrs.ClassValidationError) as info:
        conv.structure(value, WithSecrets)
    return explain(info.value, "$")


@pytest.mark.parametrize("value", ["", " ", "\t\n"])
def test_an_empty_or_blank_secret_is_an_error_not_no_secret(tmp_path, value):
    """An exported-but-empty ${VAR} must never switch authentication off."""
    conv = make_config_converter(tmp_path)
    (problem,) = structure_problems(conv, {"password": value})
    assert problem.path == "$.password"
    assert problem.message.startswith("must not be empty or whitespace")
    (problem,) = structure_problems(conv, {"tokens": ["ok", value]})
    assert problem.path == "$.tokens[1]"
    assert conv.structure({}, WithSecrets).password is None  # leaving the key out is fine


def test_secrets_from_files_and_lists(tmp_path):
    (tmp_path / "tok").write_text("from-file\n")
    conv = make_config_converter(tmp_path)
    one = conv.structure({"tokens": "only", "password": {"file": "tok"}}, WithSecrets)
    assert one.tokens == [Secret("only")]
    assert one.password == Secret("from-file")
    two = conv.structure({"tokens": ["a", {"file": "tok"}]}, WithSecrets)
    assert two.tokens == [Secret("a"), Secret("from-file")]
    (problem,) = structure_problems(conv, {"password": {"file": "missing"}})
    assert problem.message.startswith("cannot read secret file")


@pytest.mark.parametrize(
    ("text", "stripped"),
    [
        ("postgresql://app:pw@db:5432/x failed", "postgresql://***@db:5432/x failed"),
        ("GET http://tok@h/x: refused", "GET http://***@h/x: refused"),
        ("s3://k:p@ss/w0rd@bucket/key", "s3://***@bucket/key"),  # '@' inside the password
        ('{"url": "https://u:p@h/"}, "mail": "a@b"', '{"url": "https://***@h/"}, "mail": "a@b"'),
        ("no URL, a@b and https://h/x stay", "no URL, a@b and https://h/x stay"),
    ],
)
def test_strip_credentials(text, stripped):
    assert strip_credentials(text) == stripped


@attrs.frozen
class PickySettings:
    """A third-party plugin's settings with its own validator raising a plain ValueError."""

    url: str = attrs.field()
    retries: int = 3

    @url.validator
    def _http_only(self, _attribute, value):
        if not value.startswith("http"):
            raise ValueError("must start with http:// or https://")


class PickyEmitter(Emitter):
    Settings = PickySettings

    async def emit(self, batch):
        pass


class PickyPlugin:
    @hookimpl
    def register_emitters(self, register):
        register("picky", PickyEmitter)


PICKY = """\
site_id: fab1
backends:
  - name: hook
    type: picky
    config:
      retires: 5
      url: ftp://x
"""


def test_custom_validator_error_names_field_and_line_and_unknown_key_gets_a_suggestion(
    tmp_path, plugins
):
    plugins.register(PickyPlugin(), "picky")
    found = load_config(write(tmp_path, PICKY), {}).check(plugins)
    assert found == ["backends[0].config.retires (line 6): unknown field; did you mean 'retries'?"]
    fixed = PICKY.replace("retires", "retries")
    found = load_config(write(tmp_path, fixed), {}).check(plugins)
    assert found == ["backends[0].config.url (line 7): must start with http:// or https://"]


def test_misspelt_top_level_key_and_type_name_their_line_and_suggest(tmp_path, plugins):
    found = problems(write(tmp_path, "site_id: fab1\nsidecr: {}\n"))
    assert found == ["sidecr (line 2): unknown field; did you mean 'sidecar'?"]
    plugins.register(PickyPlugin(), "picky")
    found = load_config(write(tmp_path, PICKY.replace("type: picky", "type: pciky")), {}).check(
        plugins
    )
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 'site.yaml'}:4: backends[0] 'hook': no installed")
    assert found[0].endswith("did you mean 'picky'?"), found


def test_check_runs_every_check_config_hook(tmp_path, plugins):
    """Host sections are checked by their host's hook, so config check and --check agree."""
    from wafermon import Problem

    seen = []

    class HostPlugin:
        @hookimpl
        def check_config(self, config, plugins):
            seen.append(config.site.site_id)
            return [config.problem("$.sidecar.listn", "unknown field")]

    plugins.register(HostPlugin(), "host")
    found = load_config(write(tmp_path, "site_id: fab1\nsidecar:\n  listn: x\n"), {}).check(plugins)
    assert seen == ["fab1"]
    assert found == [str(Problem("$.sidecar.listn", "unknown field", 3))]


def test_an_authorization_header_is_masked_but_an_author_is_not():
    masked = mask_secrets({"headers": {"Authorization": "Bearer t0k"}, "author": "Ada"})
    assert masked == {"headers": {"Authorization": "***"}, "author": "Ada"}
