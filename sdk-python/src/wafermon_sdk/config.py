"""SDK settings: defaults, then a YAML/TOML file, then WAFERMON_* variables, then arguments.

Every setting has one name, used as the file key and the keyword argument, and one
environment variable (``WAFERMON_`` + the name in capitals; ``site_config`` is
``WAFERMON_CONFIG``). ``load_settings`` checks them all
and raises ``wafermon.ConfigError`` listing every fault, each named the way the user wrote it:
``WAFERMON_MODE: must be one of sidecar, direct, both, got 'sidcar'``, ``sdk.toml: queue_size:
...`` or ``queue_size: ...`` for an argument. It never opens a connection and never logs a
secret (``token`` is a ``wafermon.Secret``).
"""

from __future__ import annotations

import importlib.util
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs
import yaml

from wafermon import ConfigError, Problem, Secret
from wafermon.config import parse_bytes, parse_seconds
from wafermon.events import SITE_ID_PATTERN

MODES = ("sidecar", "direct", "both")
QUEUE_FULL_POLICIES = ("block", "spool", "drop")
ENV_PREFIX = "WAFERMON_"
#: The variable naming an SDK settings file, read when ``initialize`` is given no file.
FILE_ENV = "WAFERMON_SDK_CONFIG"


def default_spool_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "wafermon-sdk" / "spool"


@attrs.frozen(kw_only=True)
class Settings:
    """What a Client runs with. Build it with ``load_settings``; see docs/sdk-python.md."""

    mode: str = "sidecar"
    sidecar_url: str = "http://127.0.0.1:17000"
    token: Secret | None = None
    site_id: str | None = None
    site_config: Path | None = None  # site config naming the backends of direct mode
    direct_url: str | None = None  # or one direct target: file:///root (no site config)
    spool_dir: Path = attrs.field(factory=default_spool_dir)
    spool_max_bytes: int = 1 << 30
    queue_size: int = 10_000
    queue_full: str = "block"
    block_timeout: float = 0.1
    batch_size: int = 500
    flush_interval: float = 0.2
    timeout: float = 10.0
    max_retries: int = 5
    enable_retries: bool = True
    retry_base_delay: float = 0.2
    retry_max_delay: float = 30.0
    replay_interval: float = 1.0
    flush_timeout: float = 10.0
    verify_tls: bool = True
    tracing: bool = False  # a CLIENT span and a W3C traceparent per POST to the sidecar
    console: bool = False  # debug: print each event to stderr as it is sent (WAFERMON_CONSOLE)

    @property
    def uses_sidecar(self) -> bool:
        return self.mode in ("sidecar", "both")

    @property
    def uses_direct(self) -> bool:
        return self.mode in ("direct", "both")


# -- parsing one value ---------------------------------------------------------------------------


def _choice(allowed: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower() if isinstance(value, str) else value
        if text not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {value!r}")
        return text

    return parse


def _integer(minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not str(value).strip().lstrip("+-").isdigit():
            raise ValueError(f"expected an integer, got {value!r}")
        number = int(str(value).strip())
        if number < minimum:
            raise ValueError(f"must be at least {minimum}, got {number}")
        return number

    return parse


def _seconds(positive: bool = True) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        seconds = parse_seconds(value)
        if positive and seconds <= 0:
            raise ValueError(f"must be more than 0, got {value!r}")
        return seconds

    return parse


def _size(value: Any) -> int:
    size = parse_bytes(value)
    if size < 1 << 20:
        raise ValueError(f"must be at least 1MiB, got {value!r}")
    return size


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _tracing(value: Any) -> bool:
    on = _boolean(value)
    if on and importlib.util.find_spec("opentelemetry") is None:
        raise ValueError(
            "needs OpenTelemetry (pip install 'wafermon-sdk[otel]'), which is not installed"
        )
    return on


def _url(value: Any) -> str:
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"expected an http:// or https:// URL such as http://127.0.0.1:17000, got {value!r}"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError(f"has an invalid port: {value!r}") from None
    return text.rstrip("/")


#: Direct-mode URL schemes and what they need; s3 waits for an S3 emitter plugin.
DIRECT_URL_HINT = "expected file:///absolute/path or s3://bucket/prefix"


def _direct_url(value: Any) -> str:
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(f"{DIRECT_URL_HINT} (file:// and an absolute path), got {value!r}")
        return text
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"{DIRECT_URL_HINT}, got {value!r}")
        raise ValueError(
            f"s3:// needs an S3 backend plugin, which does not exist yet, got {value!r}; "
            "use file:///absolute/path, a site config (WAFERMON_CONFIG) or the sidecar"
        )
    raise ValueError(f"{DIRECT_URL_HINT}, got {value!r}")


def direct_url_root(url: str) -> Path:
    """The folder a ``file://`` direct URL names."""
    return Path(unquote(urlsplit(url).path))


def _site_id(value: Any) -> str:
    text = str(value)
    if not SITE_ID_PATTERN.fullmatch(text):
        raise ValueError(
            "must be 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit, "
            f"got {value!r}"
        )
    return text


def _path(value: Any) -> Path:
    text = str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    return Path(text).expanduser()


def _token(value: Any) -> Secret | None:
    if isinstance(value, Secret):
        return value if value else None
    return Secret(str(value)) if str(value) else None


PARSERS: dict[str, Callable[[Any], Any]] = {
    "mode": _choice(MODES),
    "sidecar_url": _url,
    "token": _token,
    "site_id": _site_id,
    "site_config": _path,
    "direct_url": _direct_url,
    "spool_dir": _path,
    "spool_max_bytes": _size,
    "queue_size": _integer(1),
    "queue_full": _choice(QUEUE_FULL_POLICIES),
    "block_timeout": _seconds(positive=False),
    "batch_size": _integer(1),
    "flush_interval": _seconds(),
    "timeout": _seconds(),
    "max_retries": _integer(0),
    "enable_retries": _boolean,
    "retry_base_delay": _seconds(),
    "retry_max_delay": _seconds(),
    "replay_interval": _seconds(),
    "flush_timeout": _seconds(positive=False),
    "verify_tls": _boolean,
    "tracing": _tracing,
    "console": _boolean,
}
assert set(PARSERS) == {a.name for a in attrs.fields(Settings)}


#: Settings whose variable is not WAFERMON_ + the name in capitals.
ENV_NAMES = {"site_config": "WAFERMON_CONFIG"}


def env_name(setting: str) -> str:
    return ENV_NAMES.get(setting, ENV_PREFIX + setting.upper())


# -- loading -------------------------------------------------------------------------------------


def read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings in a YAML (.yaml, .yml) or TOML (.toml) file; ConfigError if unreadable.

    The settings may sit at the top level or under a ``wafermon_sdk`` table/key.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [Problem("$", f"cannot read settings file: {exc.strerror}")], str(path)
        ) from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError([Problem("$", "expected a .yaml, .yml or .toml file")], str(path))
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        problem = Problem("$", f"not valid {path.suffix[1:].upper()}: {exc}")
        raise ConfigError([problem], str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError([Problem("$", "expected a mapping of settings")], str(path))
    section = data.get("wafermon_sdk", data)
    if not isinstance(section, dict):
        raise ConfigError([Problem("wafermon_sdk", "expected a mapping of settings")], str(path))
    return section


def load_settings(
    file: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Defaults < ``file`` (or the file WAFERMON_SDK_CONFIG names) < WAFERMON_* < overrides.

    Raises ConfigError listing every bad setting, each under the name the user wrote.
    """
    environ = os.environ if environ is None else environ
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    given_as: dict[str, str] = {}  # setting -> how the user named it, for later problems

    def take(name: str, raw: Any, where: str) -> None:
        if name not in PARSERS:
            known = ", ".join(sorted(PARSERS))
            problems.append(Problem(where, f"unknown setting (known: {known})"))
            return
        if raw is None:
            values.pop(name, None)
            return
        try:
            values[name] = PARSERS[name](raw)
            given_as[name] = where
        except ValueError as exc:
            problems.append(Problem(where, str(exc)))

    file = file if file is not None else environ.get(FILE_ENV) or None
    if file is not None:
        for key, raw in read_file(file).items():
            take(str(key), raw, f"{file}: {key}")
    for name in PARSERS:
        raw = environ.get(env_name(name))
        if raw is not None and (raw.strip() or name == "token"):
            take(name, raw, env_name(name))
    for name, raw in overrides.items():
        take(name, raw, name)
    if problems:
        raise ConfigError(problems)
    settings = Settings(**values)
    if settings.uses_direct and settings.site_config is None and settings.direct_url is None:
        raise ConfigError(
            [
                Problem(
                    given_as.get("mode", "mode"),
                    f"{settings.mode!r} needs a direct target: WAFERMON_DIRECT_URL "
                    "(file:///absolute/path) or a site config file naming the backends "
                    "(WAFERMON_CONFIG)",
                )
            ]
        )
    if settings.site_config is not None and settings.direct_url is not None:
        raise ConfigError(
            [
                Problem(
                    given_as["direct_url"],
                    f"set either it or {given_as['site_config']} (a site config's backends), "
                    "not both",
                )
            ]
        )
    if settings.retry_max_delay < settings.retry_base_delay:
        raise ConfigError([Problem("retry_max_delay", "must not be less than retry_base_delay")])
    return settings
