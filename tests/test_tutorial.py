"""docs/plugin-tutorial.md works end to end, exactly as written.

Its files (fenced blocks tagged ``file=PATH``) are written out, the plugin is built and
installed into a fresh virtualenv together with core from this checkout, and every ``$``
command in its console blocks is run there; the output must match the page. Needs ``uv``
(the nox session installs it) and access to the package index for the plugin's dependencies.
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
FILE_BLOCK = re.compile(r"^```\w+ file=(\S+)\n(.*?)^```$", re.M | re.S)
CONSOLE_BLOCK = re.compile(r"^```console\n(.*?)^```$", re.M | re.S)


def console_steps(text: str) -> list[tuple[str, str]]:
    """(command, expected output) for every ``$`` line of every console block, in order."""
    steps: list[tuple[str, str]] = []
    for block in CONSOLE_BLOCK.findall(text):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, output = chunk.partition("\n")
            steps.append((command, output.rstrip("\n")))
    return steps


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tutorial's files on disk and a fresh venv with core and the plugin installed."""
    work = tmp_path_factory.mktemp("tutorial")
    for name, body in FILE_BLOCK.findall(TUTORIAL.read_text()):
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(body)
    uv = shutil.which("uv")
    assert uv, "uv is required to build the tutorial venv (nox -s integration installs it)"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(work / ".venv")], check=True)
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--python",
            str(work / ".venv" / "bin" / "python"),
            str(REPO / "core"),
            f"{work / 'wafermon-backend-csv'}[test]",
        ],
        check=True,
    )
    return work


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


def test_the_page_has_the_files_and_commands_it_promises():
    names = [name for name, _ in FILE_BLOCK.findall(TUTORIAL.read_text())]
    assert "wafermon-backend-csv/pyproject.toml" in names
    assert "site.yaml" in names
    commands = [c for c, _ in console_steps(TUTORIAL.read_text())]
    assert "wafermon plugins" in commands
    assert "wafermon emit -c site.yaml events.ndjson" in commands


def test_every_console_command_prints_what_the_page_shows(workdir):
    for command, expected in console_steps(TUTORIAL.read_text()):
        if command.startswith("pip install"):
            continue  # done by the fixture, with uv, into a fresh venv
        result = run(workdir, command)
        assert result.stdout.rstrip("\n") == expected, f"$ {command}"


def test_the_plugin_tests_from_the_page_pass(workdir):
    result = run(workdir, "python -m pytest -q -p no:cacheprovider wafermon-backend-csv/tests")
    assert result.returncode == 0, result.stdout
    assert "2 passed" in result.stdout
