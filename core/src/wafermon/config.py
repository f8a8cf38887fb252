"""The site config: one YAML file naming the site, its hosts' settings, backends and sources.

Loading does, in order: parse YAML keeping each key's line, interpolate ``${VAR}`` and
``${VAR:-default}`` from the environment (``$$`` is a literal ``$``), structure the result into
attrs classes with cattrs. Every problem is reported with its key path and line, all at once.
Secret values are wrapped in ``Secret``, whose repr is masked, so they never reach a log;
``masked()`` hides them in ``config show``.
"""

from __future__ import annotations

import contextvars
import copy
import os
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NewType, cast, overload

import attrs
import cattrs
import yaml
from cattrs.cols import list_structure_factory
from cattrs.gen import make_dict_structure_fn

from .errors import ConfigError, FieldValueError, InvalidInput, Problem, explain, type_name
from .events import SITE_ID_PATTERN
from .interfaces import Component, Emitter, Notifier, QueryAdapter
from .plugins import Plugins, Provided

# -- value types plugins may use in their Settings classes -------------------------------------


class Secret:
    """A string that must not be shown: repr and str are masked, ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


class FileSecret(Secret):
    """A Secret read from a file (``{file: PATH}``); ``path`` lets a host read it again when
    the file changes (token rotation without a restart)."""

    __slots__ = ("path",)

    def __init__(self, value: str, path: Path) -> None:
        super().__init__(value)
        self.path = path


ByteSize = NewType("ByteSize", int)
"""A size in bytes; config accepts ``1048576``, ``"512KiB"``, ``"64MiB"``, ``"1GiB"``."""

Seconds = NewType("Seconds", float)
"""A duration in seconds; config accepts ``30``, ``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"``."""

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_TIME_UNITS = {"": 1, "ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_QUANTITY = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _quantity(value: Any, units: Mapping[str, float], what: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected {what}, got a boolean")
    if isinstance(value, int | float):
        number, unit = value, ""
    else:
        match = _QUANTITY.fullmatch(str(value))
        if not match or match[2].lower() not in units:
            raise ValueError(f"expected {what}, got {value!r}")
        number, unit = float(match[1]), match[2].lower()
    if number < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return number * units[unit]


def parse_bytes(value: Any) -> int:
    """A size from config or the command line: ``1048576``, ``"64MiB"``, ``"1GB"``."""
    return int(_quantity(value, _SIZE_UNITS, "a size such as 1048576, 512KiB, 64MiB or 1GB"))


def parse_seconds(value: Any) -> float:
    """A duration from config or the command line: ``30``, ``"500ms"``, ``"5m"``, ``"2d"``."""
    return _quantity(value, _TIME_UNITS, "a duration such as 30, 500ms, 30s, 5m, 1h or 2d")


def _structure_bool(value: Any, _t: type) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"expected true or false, got {value!r}")


def _structure_int(value: Any, _t: type) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | str)
        or not str(value).strip(" -+").isdigit()
    ):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def _structure_float(value: Any, _t: type) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None


def _structure_str(value: Any, _t: type) -> str:
    if isinstance(value, dict | list) or value is None:
        raise ValueError(f"expected a string, got {type_name(value, yaml=True)}")
    return str(value)


def _structure_secret(value: Any, base_dir: Path) -> Secret:
    """A secret inline (``"${VAR}"``, env interpolated) or from a file (``{file: path}``).

    Empty or whitespace-only is an error, not "no secret": an exported-but-empty variable
    must never switch authentication off. A file's trailing newline is not part of it.
    """
    if isinstance(value, dict):
        if set(value) != {"file"}:
            raise ValueError("expected a string or {file: PATH}")
        path = base_dir / Path(_structure_str(value["file"], str)).expanduser()
        try:
            text = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
        if not text.strip():
            raise ValueError(f"secret file {path} is empty")
        return FileSecret(text, path)
    text = _structure_str(value, str)
    if not text.strip():
        raise ValueError(
            "must not be empty or whitespace (an unset or empty variable?); "
            "set a value or remove the key"
        )
    return Secret(text)


def _structure_secrets(value: Any, base_dir: Path) -> list[Secret]:
    """One secret or a list of them (two valid at once while rotating)."""
    if value is None:
        return []
    if not isinstance(value, list):
        return [_structure_secret(value, base_dir)]
    out, problems = [], []
    for i, item in enumerate(value):
        try:
            out.append(_structure_secret(item, base_dir))
        except ValueError as exc:
            problems.append(Problem(f"$[{i}]", str(exc)))
    if problems:
        raise InvalidInput(problems)
    return out


_CONFIG_DIR: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "wafermon_config_dir", default=None
)


def config_dir() -> Path | None:
    """The folder of the config file whose settings are being structured right now, else None.

    Path settings resolve against it; a plugin whose setting hides a path in another value
    (a SQLite URL) resolves it here too, so every relative path in a site config means the
    same thing: relative to the config file, never to the working directory.
    """
    return _CONFIG_DIR.get()


def make_config_converter(base_dir: Path) -> cattrs.Converter:
    """The converter for config sections; relative paths resolve against ``base_dir``."""
    conv = cattrs.Converter(detailed_validation=True, forbid_extra_keys=True)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(Secret, lambda v, _t: _structure_secret(v, base_dir))
    conv.register_structure_hook(ByteSize, lambda v, _t: ByteSize(parse_bytes(v)))
    conv.register_structure_hook(Seconds, lambda v, _t: Seconds(parse_seconds(v)))
    conv.register_structure_hook(
        Path, lambda v, _t: base_dir / Path(_structure_str(v, str)).expanduser()
    )
    conv.register_structure_hook_func(lambda t: t == dict[str, Any], _mapping)

    def checked(expected: type, factory: Any) -> Any:
        """Wrap a hook factory so a wrong YAML shape gets a plain-words error."""

        def make(cls: type) -> Any:
            structure = factory(cls, conv)

            def structure_checked(value: Any, _t: type) -> Any:
                if not isinstance(value, expected):
                    raise ValueError(
                        f"expected {type_name(expected(), yaml=True)}, "
                        f"got {type_name(value, yaml=True)}"
                    )
                return structure(value, _t)

            return structure_checked

        return make

    conv.register_structure_hook_factory(attrs.has, checked(dict, make_dict_structure_fn))
    conv.register_structure_hook_factory(
        lambda t: cast(object, typing.get_origin(t)) is list,
        checked(list, list_structure_factory),
    )
    # After the list factory, so it wins: one secret or a list of them.
    conv.register_structure_hook_func(
        lambda t: t == list[Secret], lambda v, _t: _structure_secrets(v, base_dir)
    )
    return conv


def _mapping(value: Any, _t: type) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {type_name(value, yaml=True)}")
    return value


# -- the site config model ----------------------------------------------------------------------

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def _component_name(_inst: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not _NAME.fullmatch(value):
        raise FieldValueError(
            attribute.name, f"must be 1-64 lower-case letters, digits, '_' or '-', got {value!r}"
        )


def _site_id(_inst: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not SITE_ID_PATTERN.fullmatch(value):
        raise FieldValueError(attribute.name, f"not a valid site id: {value!r}")


@attrs.frozen
class BackendConfig:
    """An emitter the sidecar routes to (and the SDK may use directly). Lower priority first."""

    name: str = attrs.field(validator=_component_name)
    type: str
    priority: int = 100
    enabled: bool = True
    fallback: str | None = None  # the backend that gets what this one rejects permanently
    config: dict[str, Any] = attrs.Factory(dict)


@attrs.frozen
class SourceConfig:
    """A query adapter the gateway may read for the unified view."""

    name: str = attrs.field(validator=_component_name)
    type: str
    enabled: bool = True
    config: dict[str, Any] = attrs.Factory(dict)


@attrs.frozen
class NotifierConfig:
    """A notifier the gateway's alert engine delivers alerts through (rules name it)."""

    name: str = attrs.field(validator=_component_name)
    type: str
    enabled: bool = True
    config: dict[str, Any] = attrs.Factory(dict)


@attrs.frozen
class SiteConfig:
    """The whole file. Host sections are structured by each host into its own settings class."""

    site_id: str = attrs.field(validator=_site_id)
    backends: list[BackendConfig] = attrs.Factory(list)
    sources: list[SourceConfig] = attrs.Factory(list)
    notifiers: list[NotifierConfig] = attrs.Factory(list)
    sidecar: dict[str, Any] = attrs.Factory(dict)
    gateway: dict[str, Any] = attrs.Factory(dict)
    central: dict[str, Any] = attrs.Factory(dict)
    dashboard: dict[str, Any] = attrs.Factory(dict)


COMPONENT_SECTIONS = {"backends": "emitter", "sources": "query_adapter", "notifiers": "notifier"}


_PARENT = re.compile(r"(\.[^.\[]+|\[\d+\])$")  # the last step of a key path


@attrs.frozen
class LoadedConfig:
    """A parsed site config with what is needed to explain problems in it later."""

    site: SiteConfig
    raw: dict[str, Any]
    lines: dict[str, int]
    path: Path

    def problem(self, path: str, message: str) -> Problem:
        """A Problem at ``path`` with the line of the closest key the file has."""
        probe = path
        while probe not in self.lines and (parent := _PARENT.sub("", probe)) != probe:
            probe = parent
        return Problem(path, message, self.lines.get(probe))

    def structure(self, cls: type, value: Any, path: str) -> Any:
        """Structure one section into ``cls``; raises ConfigError naming key paths and lines."""
        conv = make_config_converter(self.path.parent)
        token = _CONFIG_DIR.set(self.path.parent)
        try:
            return conv.structure(value if value is not None else {}, cls)
        except Exception as exc:  # noqa: BLE001 - cattrs errors, explained with paths
            problems = [self.problem(p.path, p.message) for p in explain(exc, path)]
            raise ConfigError([_relative(p) for p in problems], str(self.path)) from None
        finally:
            _CONFIG_DIR.reset(token)

    def enabled(self, section: str) -> list[tuple[int, Any]]:
        """(index, entry) for the enabled entries of 'backends', 'sources' or 'notifiers', by
        priority."""
        entries = list(enumerate(getattr(self.site, section)))
        entries = [(i, e) for i, e in entries if e.enabled]
        return sorted(entries, key=lambda ie: getattr(ie[1], "priority", 0))

    def build(self, section: str, plugins: Plugins) -> list[Component]:
        """Instantiate every enabled component of a section (not started yet)."""
        return [
            self.build_entry(section, index, entry, plugins)
            for index, entry in self.enabled(section)
        ]

    def find(self, section: str, name: str) -> tuple[int, Any] | tuple[None, None]:
        """(index, entry) of the entry called ``name`` in 'backends', 'sources' or 'notifiers'."""
        for index, entry in enumerate(getattr(self.site, section)):
            if entry.name == name:
                return index, entry
        return None, None

    @overload
    def build_entry(
        self, section: Literal["backends"], index: int, entry: Any, plugins: Plugins
    ) -> Emitter: ...
    @overload
    def build_entry(
        self, section: Literal["sources"], index: int, entry: Any, plugins: Plugins
    ) -> QueryAdapter: ...
    @overload
    def build_entry(
        self, section: Literal["notifiers"], index: int, entry: Any, plugins: Plugins
    ) -> Notifier: ...
    @overload
    def build_entry(self, section: str, index: int, entry: Any, plugins: Plugins) -> Component: ...
    def build_entry(self, section: str, index: int, entry: Any, plugins: Plugins) -> Component:
        """Instantiate one entry: find its plugin, structure its settings (key paths, lines).

        The component is of the section's kind (``Plugins.require`` checked the class)."""
        provided = self.require_plugin(section, index, entry, plugins)
        settings = self.structure(
            provided.cls.Settings, entry.config, f"$.{section}[{index}].config"
        )
        return provided.cls(name=entry.name, settings=settings)

    def require_plugin(self, section: str, index: int, entry: Any, plugins: Plugins) -> Provided:
        kind = COMPONENT_SECTIONS[section]
        line = self.lines.get(f"$.{section}[{index}].type")
        at = f":{line}" if line else ""  # file:line, as compilers name a place
        where = f"{self.path}{at}: {section}[{index}] {entry.name!r}"
        return plugins.require(kind, entry.type, needed_by=where)

    def check(self, plugins: Plugins) -> list[str]:
        """Every problem with the enabled components (missing plugins, bad settings) and with
        the host sections, checked by their hosts' ``check_config`` hooks."""
        found: list[str] = []
        for section in COMPONENT_SECTIONS:
            for index, entry in self.enabled(section):
                try:
                    self.build_entry(section, index, entry, plugins)
                except ConfigError as exc:
                    found.extend(str(p) for p in exc.problems)
                except Exception as exc:  # noqa: BLE001 - PluginError and plugin __init__ bugs
                    found.append(str(exc))
        for problems in plugins.pm.hook.check_config(config=self, plugins=plugins):
            found.extend(str(p) for p in problems or () if str(p) not in found)
        return found

    def masked(self, plugins: Plugins | None = None) -> dict[str, Any]:
        """The interpolated config with secrets replaced by ``***``: values under
        secret-looking keys, passwords in URLs, and settings a plugin declares as ``Secret``."""
        raw = copy.deepcopy(self.raw)
        for section, kind in COMPONENT_SECTIONS.items():
            entries = raw.get(section)
            types = plugins.types(kind) if plugins is not None else {}
            for entry in entries if isinstance(entries, list) else ():
                type_name = entry.get("type") if isinstance(entry, dict) else None
                provided = types.get(type_name) if isinstance(type_name, str) else None
                config = entry.get("config") if provided is not None else None
                if provided is None or not isinstance(config, dict):
                    continue
                for name in secret_settings(provided.cls.Settings):
                    if config.get(name) not in (None, ""):
                        config[name] = Secret(str(config[name]))
        masked: dict[str, Any] = mask_secrets(raw)
        return masked


def secret_settings(settings_cls: type) -> list[str]:
    """Names of the fields of a Settings class typed ``Secret`` or ``Secret | None``."""
    hints = typing.get_type_hints(settings_cls)
    return [name for name, hint in hints.items() if Secret in (hint, *typing.get_args(hint))]


def _relative(problem: Problem) -> Problem:
    return attrs.evolve(problem, path=problem.path.removeprefix("$."))


# -- loading ------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_config(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> LoadedConfig:
    """Read, interpolate, validate. Raises ConfigError listing every problem found."""
    path = Path(path)
    environ = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [Problem("$", f"cannot read config file: {exc.strerror}")], str(path)
        ) from None
    data, lines = _parse_yaml(text, path)
    problems: list[Problem] = []
    data = _interpolate(data, "$", environ, problems)
    loaded = LoadedConfig(SiteConfig(site_id="unset"), data, lines, path)
    if problems:
        raise ConfigError(
            [_relative(loaded.problem(p.path, p.message)) for p in problems], str(path)
        )
    site = loaded.structure(SiteConfig, data, "$")
    loaded = attrs.evolve(loaded, site=site)
    duplicates = [
        loaded.problem(f"$.{section}[{i}].name", f"name {entry.name!r} is used twice in {section}")
        for section in COMPONENT_SECTIONS
        for i, entry in enumerate(getattr(site, section))
        if [e.name for e in getattr(site, section)].index(entry.name) != i
    ]
    enabled = {b.name for b in site.backends if b.enabled}
    duplicates += [
        loaded.problem(f"$.backends[{i}].fallback", _fallback_problem(b.name, b.fallback, enabled))
        for i, b in enumerate(site.backends)
        if b.enabled and b.fallback is not None and _fallback_problem(b.name, b.fallback, enabled)
    ]
    if duplicates:
        raise ConfigError([_relative(p) for p in duplicates], str(path))
    return loaded


def _fallback_problem(name: str, fallback: str, enabled: set[str]) -> str:
    if fallback == name:
        return "a backend cannot be its own fallback"
    if fallback not in enabled:
        return f"names {fallback!r}, which is not an enabled backend"
    return ""


def _parse_yaml(text: str, path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise ConfigError(
            [Problem("$", f"not valid YAML: {getattr(exc, 'problem', exc)}", line)], str(path)
        ) from None
    finally:
        loader.dispose()
    if node is None or not isinstance(data, dict):
        raise ConfigError([Problem("$", "expected a mapping with at least site_id", 1)], str(path))
    lines: dict[str, int] = {}
    _record_lines(node, "$", lines)
    return data, lines


def _record_lines(node: yaml.Node, path: str, lines: dict[str, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _record_lines(value, f"{path}.{key.value}", lines)
            lines[f"{path}.{key.value}"] = (
                key.start_mark.line + 1
            )  # the key's line, not the value's
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(item, f"{path}[{i}]", lines)


def _interpolate(value: Any, path: str, environ: Mapping[str, str], problems: list[Problem]) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            if match[0] == "$$":
                return "$"
            name, default = match[1], match[2]
            if environ.get(name):
                return environ[name]
            if default is not None:  # as in the shell, ${VAR:-x} also replaces an empty VAR
                return default
            if name in environ:
                return ""
            problems.append(Problem(path, f"environment variable {name} is not set"))
            return ""

        return _VARIABLE.sub(substitute, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{path}.{k}", environ, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{path}[{i}]", environ, problems) for i, v in enumerate(value)]
    return value


# -- masking ------------------------------------------------------------------------------------

SECRET_KEY = re.compile(
    r"token|passw|secret|api[-_]?key|access[-_]?key|private[-_]?key|credential|auth(?!or(?!iz))",
    re.IGNORECASE,
)


# The user-info part of any URL (``user@``, ``user:password@``), up to the last '@' before
# the host, since a password may hold '@' or '/'.
_URL_USERINFO = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://)[^\s\"'<>]*@", re.IGNORECASE)


def strip_credentials(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``.

    The one helper every host applies to what reaches an error, a log line or an API answer:
    ``postgresql://app:pw@db/x`` becomes ``postgresql://***@db/x``.
    """
    if "@" not in text:
        return text
    return _URL_USERINFO.sub(r"\g<head>***@", text)


def describe(exc: BaseException) -> str:
    """An exception as one line for logs and API answers: ``Type: message`` (or ``Type`` when
    it has no message), URL credentials stripped. The one way every host and plugin says it."""
    text = strip_credentials(str(exc).strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def mask_secrets(value: Any, *, under_secret_key: bool = False) -> Any:
    """Replace values under secret-looking keys, and passwords inside URLs, with ``***``."""
    if isinstance(value, dict):
        return {
            k: mask_secrets(v, under_secret_key=under_secret_key or bool(SECRET_KEY.search(str(k))))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_secrets(v, under_secret_key=under_secret_key) for v in value]
    if under_secret_key and value not in (None, ""):
        return "***"
    if isinstance(value, Secret):
        return "***"
    if isinstance(value, str):
        return strip_credentials(value)
    return value


# -- describing a plugin's settings ------------------------------------------------------------

_TYPE_NAMES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    Path: "path",
    Secret: "secret",
    ByteSize: "size",
    Seconds: "duration",
    dict[str, Any]: "mapping",
}


def describe_settings(settings_cls: type) -> list[dict[str, Any]]:
    """Each field of a Settings class as ``name``, ``type``, ``required``, ``default``
    (``fields`` for a nested section), in the words docs/configuration.md uses for value
    types: what ``wafermon plugins --json`` shows, so a config can be written without the code.
    """
    hints = typing.get_type_hints(settings_cls)
    described = []
    for field in attrs.fields(settings_cls):
        hint = hints.get(field.name, field.type)
        item: dict[str, Any] = {"name": field.name, "type": _type_label(hint)}
        default = field.default
        item["required"] = default is attrs.NOTHING
        if isinstance(default, attrs.Factory) and not default.takes_self:  # type: ignore[arg-type]
            default = default.factory()
        if default is attrs.NOTHING or isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = None
        inner = _nested_settings(hint)
        if inner is not None:
            item["fields"] = describe_settings(inner)
            default = None  # the nested fields carry their own defaults
        item["default"] = _json_default(default)
        described.append(item)
    return described


def _type_label(hint: Any) -> str:
    if hint in _TYPE_NAMES:
        return _TYPE_NAMES[hint]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, type(int | str)):
        label = " or ".join(_type_label(a) for a in args)
        return f"{label} or null" if type(None) in typing.get_args(hint) else label
    if typing.get_origin(hint) is list and args:
        return f"list of {_type_label(args[0])}"
    if typing.get_origin(hint) is dict or hint is dict:
        return "mapping"
    if attrs.has(hint):
        return "mapping"
    return getattr(hint, "__name__", str(hint))


def _nested_settings(hint: Any) -> type | None:
    if attrs.has(hint):
        return hint
    inner = [a for a in typing.get_args(hint) if attrs.has(a)]
    return inner[0] if len(inner) == 1 else None


def _json_default(value: Any) -> Any:
    if isinstance(value, Secret):
        return "***"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_json_default(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_default(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
