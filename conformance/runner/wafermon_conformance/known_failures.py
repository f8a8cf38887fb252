"""Known failures: conformance/known-failures/<language>.txt, one scenario name per line.

Lines are scenario names; ``#`` starts a comment (say why, and link the issue). The run
fails on a scenario that fails without being listed (a regression) **and** on a listed one
that now passes (the list must shrink as SDKs improve), as protobuf's conformance suite does.
A listed name that is no scenario is an error too. ``--update-known-failures`` rewrites the
file from the measured results, keeping the comments of names that stay.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import attrs

from . import paths

PASS, FAIL, KNOWN, FIXED, NOT_RUN = "pass", "FAIL", "known", "FIXED", "not run"
HEADER = (
    "# Scenarios the {language} SDK is known to fail, one name per line; say why in a comment.\n"
    "# Regenerate: nox -s conformance -- --lang {language} --update-known-failures\n"
)


@attrs.frozen
class Entry:
    name: str
    comment: str = ""


def path_for(language: str, folder: Path = paths.KNOWN_FAILURES) -> Path:
    return folder / f"{language}.txt"


def read(language: str, folder: Path = paths.KNOWN_FAILURES) -> dict[str, Entry]:
    path = path_for(language, folder)
    if not path.exists():
        return {}
    entries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, comment = line.partition("#")
        if name.strip():
            entries[name.strip()] = Entry(name.strip(), comment.strip())
    return entries


def verdict(passed: bool | None, listed: bool) -> str:
    """The cell of the matrix: passed is None when the scenario could not run."""
    if passed is None:
        return NOT_RUN
    if passed:
        return FIXED if listed else PASS
    return KNOWN if listed else FAIL


def stale(listed: Iterable[str], scenarios: Iterable[str]) -> list[str]:
    """Listed names that are no scenario."""
    return sorted(set(listed) - set(scenarios))


def write(
    language: str,
    results: dict[str, bool | None],
    all_scenarios: Iterable[str],
    folder: Path = paths.KNOWN_FAILURES,
) -> Path:
    """Rewrite the list from ``results`` (name -> passed). Entries of scenarios that did not
    run in this invocation are kept as they were; names that are no scenario are dropped."""
    old = read(language, folder)
    existing = set(all_scenarios)
    failing = {name for name, passed in results.items() if passed is False}
    kept = {name for name in old if name in existing and name not in results}
    lines = []
    for name in sorted(failing | kept):
        comment = old[name].comment if name in old else ""
        lines.append(f"{name}  # {comment}" if comment else name)
    path = path_for(language, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER.format(language=language) + "".join(f"{x}\n" for x in lines))
    return path
