"""docs/plugin-tutorial.md works end to end, exactly as written.

The page is followed in order in a fresh virtualenv holding core from this checkout: every
``$`` command of its console blocks is run (``pip install`` through uv into that venv) and its
output must match the page, where ``...`` stands for anything (timings, pytest's dots); every
block tagged ``file=PATH`` is written; every block tagged ``generated=PATH`` must equal what
``wafermon plugin new`` wrote there. Needs ``uv`` (the nox session installs it) and access to
the package index for the plugin's dependencies.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TUTORIAL = REPO / "docs" / "plugin-tutorial.md"
BLOCK = re.compile(r"^```(\w+)(?: (file|generated)=(\S+))?\n(.*?)^```$", re.M | re.S)


def steps(text: str) -> list[tuple[str, str, str]]:
    """(kind, target, body) in page order: ("run", command, expected output),
    ("file", path, body), ("generated", path, body)."""
    found: list[tuple[str, str, str]] = []
    for language, tag, path, body in BLOCK.findall(text):
        if tag:
            found.append((tag, path, body))
        elif language == "console":
            for chunk in re.split(r"^\$ ", body, flags=re.M)[1:]:
                command, _, output = chunk.partition("\n")
                found.append(("run", command, output.rstrip("\n")))
    return found


def matches(expected: str, actual: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual.rstrip("\n"), re.S) is not None


def run(workdir: Path, command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{workdir / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("WAFERMON_LOAD_PLUGINS", None)
    return subprocess.run(
        command,
        shell=True,
        cwd=workdir,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )


@pytest.fixture(scope="module")
def followed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple]]:
    """The page followed in a fresh venv: (workdir, [(kind, target, expected, actual)])."""
    work = tmp_path_factory.mktemp("tutorial")
    uv = shutil.which("uv")
    assert uv, "uv is required to build the tutorial venv (nox -s integration installs it)"
    python = str(work / ".venv" / "bin" / "python")
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(work / ".venv")], check=True)
    subprocess.run([uv, "pip", "install", "-q", "--python", python, str(REPO / "core")], check=True)
    done: list[tuple] = []
    for kind, target, body in steps(TUTORIAL.read_text()):
        if kind == "file":
            (work / target).parent.mkdir(parents=True, exist_ok=True)
            (work / target).write_text(body)
        elif kind == "generated":
            path = work / target
            done.append((kind, target, body, path.read_text() if path.exists() else None))
        elif target.startswith("pip install "):
            # Into the fresh venv, with uv (what pip prints is not compared).
            result = run(work, f"{uv} pip install -q --python {python} {target[12:]}")
            assert result.returncode == 0, f"$ {target}\n{result.stdout}"
        else:
            done.append((kind, target, body, run(work, target).stdout))
    return work, done


def test_the_page_has_the_steps_it_promises():
    found = steps(TUTORIAL.read_text())
    commands = [target for kind, target, _ in found if kind == "run"]
    assert commands[0] == "wafermon plugin new csv"
    assert "wafermon plugins" in commands
    assert "wafermon emit -c site.yaml events.ndjson" in commands
    assert ("generated", "wafermon-backend-csv/pyproject.toml") in [(k, t) for k, t, _ in found]
    assert "site.yaml" in [target for kind, target, _ in found if kind == "file"]


def test_every_console_command_prints_what_the_page_shows(followed):
    _work, done = followed
    for kind, command, expected, actual in done:
        if kind == "run":
            assert matches(expected, actual), f"$ {command}\n{actual}"


def test_generated_files_shown_on_the_page_are_what_plugin_new_writes(followed):
    _work, done = followed
    shown = [(target, expected, actual) for kind, target, expected, actual in done if kind != "run"]
    assert len(shown) >= 2
    for target, expected, actual in shown:
        assert actual == expected, f"{target} differs from what `wafermon plugin new` wrote"


def test_the_plugin_tests_from_the_page_pass_with_the_contract_suite(followed):
    work, _done = followed
    result = run(work, "python -m pytest -q -p no:cacheprovider -rA wafermon-backend-csv")
    assert result.returncode == 0, result.stdout
    assert "TestCsvContract::test_a_cancelled_emit_does_not_corrupt_later_ones" in result.stdout
    assert "\n11 passed" in result.stdout, result.stdout
