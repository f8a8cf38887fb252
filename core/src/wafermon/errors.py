"""Every exception wafermon raises on purpose, in one place.

Two families matter to callers: *input* errors (bad events, bad config, broken plugins), which
carry the path of what is wrong so a person can fix it, and *delivery* errors from emitters,
which say whether trying again can help. Nothing here may hold a secret value in its message.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Iterable, Sequence

import attrs
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)


class WafermonError(Exception):
    """Base class of every deliberate wafermon error."""


@attrs.frozen
class Problem:
    """One thing wrong with an input, located by a JSON path such as ``$.entity.type``."""

    path: str
    message: str
    line: int | None = None  # 1-based line in a YAML file, when known

    def __str__(self) -> str:
        where = f"{self.path} (line {self.line})" if self.line else self.path
        return f"{where}: {self.message}"


class InvalidInput(WafermonError, ValueError):
    """Input that cannot be accepted; ``problems`` lists every fault found, not just the first."""

    def __init__(self, problems: Iterable[Problem], context: str = "") -> None:
        self.problems: list[Problem] = list(problems)
        self.context = context
        lines = "; ".join(str(p) for p in self.problems)
        super().__init__(f"{context}: {lines}" if context else lines)


class EventDecodeError(InvalidInput):
    """One event failed to decode or validate."""


class BatchDecodeError(InvalidInput):
    """The batch body as a whole is unreadable (not JSON, not an array or NDJSON, too deep)."""


class ConfigError(InvalidInput):
    """The site config is wrong: each problem names the key path and, when known, the line."""


class PluginError(WafermonError):
    """A plugin the site config needs is missing, failed to import, or clashes with another."""


class FieldValueError(ValueError):
    """Raised by model validators so the decoder can report the exact field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class EmitterError(WafermonError):
    """A backend could not take a batch. Subclasses say whether retrying can help."""

    retryable: bool = False


class RetryableError(EmitterError):
    """Transient: the backend is down, slow or overloaded. The router retries with backoff.

    ``retry_after`` is the wait in seconds the other side asked for (an HTTP ``Retry-After``),
    or None; a caller that retries waits at least that long before the next attempt.
    """

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_delay(
    attempt: int,
    *,
    base_s: float,
    max_s: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    Exponential backoff with full jitter (uniform from 0 to ``base_s * 2**(attempt-1)``, capped
    at ``max_s``): of the usual jitter schemes it spreads many clients retrying against one
    recovering server best. Never less than a ``retry_after`` the other side asked for (itself
    capped at ``max_s``). The router and the Python SDK both wait this long.
    """
    cap = min(max_s, base_s * 2 ** max(0, attempt - 1))
    delay = (rng or random).uniform(0, cap)
    if retry_after is not None:
        delay = max(delay, min(retry_after, max_s))
    return delay


class PermanentError(EmitterError):
    """Retrying the same input will fail again (rejected by the backend, invalid for it).

    ``event_ids`` names the events that failed when only some of a batch did; ``None`` means the
    whole batch. The router sends those to the dead-letter file with this message as the reason.
    """

    retryable = False

    def __init__(self, message: str, event_ids: Sequence[object] | None = None) -> None:
        super().__init__(message)
        self.event_ids = None if event_ids is None else list(event_ids)


def explain(exc: BaseException, path: str) -> list[Problem]:
    """Flatten cattrs' nested validation errors into Problems with JSON paths under ``path``."""
    return list(_walk(exc, path))


def _walk(exc: BaseException, path: str) -> Iterable[Problem]:
    if isinstance(exc, ClassValidationError | IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            step = (
                f"[{note.index}]" if isinstance(note, IterableValidationNote) else f".{note.name}"
            )
            yield from _walk(sub, path + step)
        for sub in without:
            field = _failed_attribute(sub) if type(sub) in (ValueError, TypeError) else None
            yield from _walk(sub, f"{path}.{field}" if field else path)
    elif isinstance(exc, ForbiddenExtraKeysError):
        known = [a.name for a in attrs.fields(exc.cl)] if attrs.has(exc.cl) else []
        for key in sorted(exc.extra_fields):
            yield Problem(f"{path}.{key}", "unknown field" + did_you_mean(key, known))
    elif isinstance(exc, FieldValueError):
        yield Problem(f"{path}.{exc.field}", exc.message)
    elif isinstance(exc, KeyError):
        yield Problem(path, "required field missing")
    elif isinstance(exc, InvalidInput):
        yield from (attrs.evolve(p, path=path + p.path.removeprefix("$")) for p in exc.problems)
    else:
        yield Problem(path, str(exc))


def did_you_mean(key: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest known name, or ``""`` when none is close."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _failed_attribute(exc: BaseException) -> str | None:
    """The attrs field whose validator raised ``exc`` (a plugin's own ValueError), if any.

    attrs passes the ``Attribute`` to each validator, so the innermost frame holding one names
    the field: a custom validator's error then gets its key path and line like built-in ones.
    """
    tb, found = exc.__traceback__, None
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if isinstance(value, attrs.Attribute):
                found = value.name
                break
        tb = tb.tb_next
    return found


_JSON_NAMES = {
    str: "a string",
    int: "a number",
    float: "a number",
    dict: "an object",
    list: "an array",
    type(None): "null",
}
_YAML_NAMES = {**_JSON_NAMES, dict: "a mapping", list: "a list", type(None): "nothing"}


def type_name(value: object, *, yaml: bool = False) -> str:
    """How a person calls the type of a parsed JSON (or YAML) value, for error messages."""
    if isinstance(value, bool):
        return "a boolean"
    return (_YAML_NAMES if yaml else _JSON_NAMES).get(type(value), type(value).__name__)
