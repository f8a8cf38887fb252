"""The examples in docs/ that are marked runnable are run, and fail the suite when they break.

Markers, in a fenced block's info string (renderers only read its first word):

- ```` ```yaml file=site.yaml ````: written to the document's scratch folder under that name
  when the document is run (a later block with the same name replaces it);
- ```` ```console runnable ````: each ``$ command`` line runs in that folder with bash; the
  lines after it, up to the next ``$``, are its expected output (stdout and stderr together,
  compared exactly, trailing spaces ignored; a line ``...`` stands for any lines, ``...``
  inside a line for any text);
- ```` ```sh runnable ````: the block is one bash script (``set -e``) that must exit 0.

Each document runs top to bottom in its own folder, so an example may use the files of the
examples before it. Commands see only the filesystem plugin (``WAFERMON_LOAD_PLUGINS``) unless
the block says ``plugins=a,b``, so outputs do not depend on what else is installed, and get
free ports in ``SIDECAR_PORT`` and ``GATEWAY_PORT``. A process whose id an example leaves in a
``*.pid`` file of the folder is killed when the document is done, passed or failed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
FENCE = re.compile(r"^```(\S*)[ \t]*(.*?)\n(.*?)^```[ \t]*$", re.M | re.S)


@attrs.frozen
class Block:
    language: str
    options: dict[str, str]
    text: str
    line: int  # 1-based line of the opening fence

    @property
    def runnable(self) -> bool:
        return "runnable" in self.options


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        options = {}
        for word in shlex.split(match[2]):
            key, _, value = word.partition("=")
            options[key] = value
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(match[1], options, match[3], line))
    return found


def documents() -> list[Path]:
    return [
        p
        for p in sorted(DOCS.rglob("*.md"))
        if any(b.runnable for b in blocks(p))  # only documents with something to run
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORTS = {"SIDECAR_PORT": str(_free_port()), "GATEWAY_PORT": str(_free_port())}


def _env(block: Block, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAFERMON_")}
    env.update(PORTS)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["WAFERMON_LOAD_PLUGINS"] = block.options.get("plugins") or "filesystem"
    env["HOME"] = str(folder)
    env["COLUMNS"] = "100"
    return env


def _run(command: str, block: Block, folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-e", "-c", command],
        cwd=folder,
        env=_env(block, folder),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )


def _matches(expected: list[str], actual: list[str]) -> bool:
    """Line by line; ``...`` matches any number of lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(_matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return (
        bool(actual)
        and _line_matches(expected[0], actual[0])
        and _matches(expected[1:], actual[1:])
    )


def _line_matches(expected: str, actual: str) -> bool:
    if "..." not in expected:
        return expected == actual
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual) is not None


def console_steps(text: str) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) for each ``$`` line of a console block."""
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line.rstrip())
        elif line.strip():
            raise AssertionError(f"output before the first $ command: {line!r}")
    return steps


def run_document(path: Path, folder: Path, root: Path = REPO) -> list[str]:
    """Run one document's examples in ``folder``; the failures, each naming file and line."""
    try:
        return _run_blocks(path, folder, root)
    finally:
        for pid_file in folder.glob("*.pid"):
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


def _run_blocks(path: Path, folder: Path, root: Path) -> list[str]:
    failures = []
    where = path.relative_to(root)
    for block in blocks(path):
        if "file" in block.options:
            target = folder / block.options["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
        if not block.runnable:
            continue
        if block.language == "console":
            for command, expected in console_steps(block.text):
                done = _run(command, block, folder)
                actual = [line.rstrip() for line in done.stdout.splitlines()]
                while expected and not expected[-1]:
                    expected.pop()
                if not _matches(expected, actual):
                    failures.append(
                        f"{where}:{block.line}: $ {command}\n--- expected\n"
                        + "\n".join(expected)
                        + "\n--- got\n"
                        + "\n".join(actual)
                    )
        elif block.language in ("sh", "bash"):
            done = _run(block.text, block, folder)
            if done.returncode != 0:
                failures.append(
                    f"{where}:{block.line}: the script exited {done.returncode}:\n" + done.stdout
                )
        else:
            failures.append(f"{where}:{block.line}: cannot run a {block.language!r} block")
    return failures


def test_some_documents_have_runnable_examples():
    assert len(documents()) >= 3, [str(p) for p in documents()]


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(DOCS)))
def test_runnable_examples_in_docs_work(path, tmp_path):
    failures = run_document(path, tmp_path)
    assert not failures, "\n\n".join(failures)


def test_a_broken_example_fails(tmp_path):
    """The checker itself: a wrong expected output and a failing command are both caught."""
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```yaml file=site.yaml\nsite_id: fab1\nbakends: []\n```\n\n"
        "```console runnable\n$ wafermon config check site.yaml\nerror: site.yaml: invalid config\n"
        "  - bakends (line 2): unknown field\n```\n\n"
        "```sh runnable\nfalse\n```\n"
    )
    run = tmp_path / "run"
    run.mkdir()
    failures = run_document(doc, run, root=tmp_path)
    assert len(failures) == 2, failures
    assert "did you mean 'backends'?" in failures[0]  # the real output, shown on failure
    assert "the script exited 1" in failures[1]


def test_ellipsis_matches_any_lines_and_any_text():
    assert _matches(["a ... z"], ["a b c z"])
    assert not _matches(["a ... z"], ["a b c"])
    assert _matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert _matches(["a", "..."], ["a"])
    assert not _matches(["a", "...", "d"], ["a", "b"])
    assert not _matches(["a"], ["a", "b"])
