"""The language registry (conformance/languages.toml): how to build and start each driver.

```toml
[c]
build = [["cmake", "-S", "sdk-c", "-B", "sdk-c/build"],
         ["cmake", "--build", "sdk-c/build", "--target", "wafermon-conformance-driver"]]
driver = ["sdk-c/build/wafermon-conformance-driver"]
```

Commands run from the repository root, as argument lists (no shell). ``{python}`` in a command
is the runner's own interpreter. ``build`` failing, or the driver's program missing, is
reported as such for that language: its scenarios are "not run", and the run fails.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import attrs

from . import paths

BUILD_TIMEOUT_S = 1800


class RegistryError(ValueError):
    """languages.toml is malformed; the message names the language and key."""


@attrs.frozen
class Language:
    name: str
    driver: list[str]
    build: list[list[str]] = attrs.Factory(list)

    def driver_command(self) -> list[str]:
        return [_expand(arg) for arg in self.driver]

    def build_commands(self) -> list[list[str]]:
        return [[_expand(arg) for arg in command] for command in self.build]

    def missing_driver(self, root: Path = paths.REPO) -> str | None:
        """Why the driver's program cannot be started, or None."""
        program = self.driver_command()[0]
        if "/" in program:
            path = Path(program) if Path(program).is_absolute() else root / program
            if not path.exists():
                return f"the driver {program} does not exist"
            return None
        if shutil.which(program) is None:
            return f"the driver's program {program!r} is not on PATH"
        return None


def _expand(arg: str) -> str:
    return arg.replace("{python}", sys.executable)


def load(path: Path = paths.LANGUAGES) -> dict[str, Language]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RegistryError(f"{path}: {exc}") from None
    found = {}
    for name, table in data.items():
        if not isinstance(table, dict):
            raise RegistryError(f"{path}: [{name}]: expected a table")
        unknown = set(table) - {"driver", "build"}
        if unknown:
            raise RegistryError(f"{path}: [{name}].{sorted(unknown)[0]}: unknown key")
        driver = table.get("driver")
        if not _is_command(driver):
            raise RegistryError(f"{path}: [{name}].driver: expected a list of strings")
        build = table.get("build", [])
        if not isinstance(build, list) or not all(_is_command(c) for c in build):
            raise RegistryError(f"{path}: [{name}].build: expected a list of lists of strings")
        found[name] = Language(name, list(driver), [list(c) for c in build])
    if not found:
        raise RegistryError(f"{path}: no language")
    return found


def _is_command(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(a, str) for a in value)


def build(language: Language, log: Path, root: Path = paths.REPO) -> str | None:
    """Run the build commands, output to ``log``; None on success, else why it failed."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as out:
        for command in language.build_commands():
            shown = " ".join(command)
            out.write(f"$ {shown}\n")
            out.flush()
            try:
                result = subprocess.run(
                    command,
                    cwd=root,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=BUILD_TIMEOUT_S,
                    check=False,
                )
            except FileNotFoundError:
                return f"`{shown}`: {command[0]} is not installed"
            except subprocess.TimeoutExpired:
                return f"`{shown}` did not finish within {BUILD_TIMEOUT_S}s"
            if result.returncode != 0:
                tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-12:]
                return f"`{shown}` exited with status {result.returncode}:\n" + "\n".join(
                    "    " + line for line in tail
                )
    return None
