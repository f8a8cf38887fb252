"""The examples in docs/ that are marked runnable are run, and fail the suite when they break.

Markers, in a fenced block's info string (renderers only read its first word):

- ```` ```yaml file=site.yaml ````: written to the document's scratch folder under that name
  when the document is run (a later block with the same name replaces it);
- ```` ```console runnable ````: each ``$ command`` line runs in that folder with bash; the
  lines after it, up to the next ``$``, are its expected output (stdout and stderr together,
  compared exactly, trailing spaces ignored; a line ``...`` stands for any lines, ``...``
  inside a line for any text);
- ```` ```sh runnable ````: the block is one bash script (``set -e``) that must exit 0;
- ```` ```python runnable ````: the block is one Python program (this interpreter) that must
  exit 0.

``env=A=1,B=2`` adds variables to a block's environment. ``aws`` (or ``aws=ec2|ecs|lambda``)
runs a block as if on AWS: AWS cannot be reached from here, so moto_server
(``scripts/services start moto``, WAFERMON_TEST_MOTO_ENDPOINT; missing is a failure) stands in
for CloudWatch and X-Ray through ``AWS_ENDPOINT_URL``, with credentials of a fresh account
(moto's STS AssumeRole) per document so a run reads back only what it wrote. The platform is
simulated the way the SDK detects it: EC2 by a local IMDSv2 server
(``AWS_EC2_METADATA_SERVICE_ENDPOINT``), ECS by a local task metadata endpoint v4
(``ECS_CONTAINER_METADATA_URI_V4``, and the ``AWS_REGION`` ECS sets), Lambda by the runtime's
``AWS_LAMBDA_*`` variables; both servers are sdk-python/tests/aws_stand_in.py, the one the
SDK's own tests use.

Each document runs top to bottom in its own folder, so an example may use the files of the
examples before it. Commands see only the filesystem plugin (``WAFERMON_LOAD_PLUGINS``) unless
the block says ``plugins=a,b``, so outputs do not depend on what else is installed, and get
free ports in ``SIDECAR_PORT`` and ``GATEWAY_PORT``. A process whose id an example leaves in a
``*.pid`` file of the folder is killed when the document is done, passed or failed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
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


def _env(block: Block, folder: Path, aws: AwsPlay | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAFERMON_", "AWS_"))}
    env.update(PORTS)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["WAFERMON_LOAD_PLUGINS"] = block.options.get("plugins") or "filesystem"
    env["HOME"] = str(folder)
    env["COLUMNS"] = "100"
    env["AWS_EC2_METADATA_DISABLED"] = "true"  # never probe 169.254.169.254 (off-box)
    if "aws" in block.options:
        if aws is None:
            raise AssertionError("an aws block needs the document's AwsPlay")
        env.update(aws.env(block.options["aws"]))
    for pair in filter(None, block.options.get("env", "").split(",")):
        key, _, value = pair.partition("=")
        env[key] = value
    return env


# -- AWS, played locally (see the module docstring) ------------------------------------------


def _stand_in_module():
    """sdk-python/tests/aws_stand_in.py, loaded from its file (one stand-in for both suites)."""
    path = REPO / "sdk-python" / "tests" / "aws_stand_in.py"
    spec = importlib.util.spec_from_file_location("aws_stand_in", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class AwsPlay:
    """moto_server with a fresh account, and the metadata stand-in, for one document's run."""

    REGION = "eu-central-1"

    def __init__(self, stack: contextlib.ExitStack) -> None:
        endpoint = os.environ.get("WAFERMON_TEST_MOTO_ENDPOINT")
        if not endpoint:
            raise AssertionError(
                'WAFERMON_TEST_MOTO_ENDPOINT is not set: eval "$(scripts/services start moto)"'
            )
        import botocore.session

        account = str(random.randrange(10**11, 10**12))
        sts = botocore.session.get_session().create_client(
            "sts", endpoint_url=endpoint, region_name=self.REGION,
            aws_access_key_id="docs", aws_secret_access_key="docs",
        )  # fmt: skip
        role = f"arn:aws:iam::{account}:role/wafermon-docs"
        keys = sts.assume_role(RoleArn=role, RoleSessionName="docs")["Credentials"]
        self.base = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": keys["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"],
            "AWS_SESSION_TOKEN": keys["SessionToken"],
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }
        self.metadata_url = stack.enter_context(_stand_in_module().stand_in())

    def env(self, platform: str) -> dict[str, str]:
        env = dict(self.base)
        if platform == "ec2":
            env["AWS_EC2_METADATA_DISABLED"] = "false"
            env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = self.metadata_url
        elif platform == "ecs":
            env["ECS_CONTAINER_METADATA_URI_V4"] = f"{self.metadata_url}/v4/container"
            env["AWS_REGION"] = self.REGION
        elif platform == "lambda":
            env.update(
                AWS_LAMBDA_FUNCTION_NAME="wafer-sorter",
                AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
                AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
                AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/wafer-sorter",
                AWS_REGION=self.REGION,
            )
        elif platform:
            raise AssertionError(f"aws={platform!r}: expected ec2, ecs or lambda")
        return env


def _run(
    command: str, block: Block, folder: Path, aws: AwsPlay | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-e", "-c", command],
        cwd=folder,
        env=_env(block, folder, aws),
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
    with contextlib.ExitStack() as stack:
        found = blocks(path)
        aws = AwsPlay(stack) if any("aws" in b.options for b in found) else None
        return _run_found(found, path.relative_to(root), folder, aws)


def _run_found(found: list[Block], where: Path, folder: Path, aws: AwsPlay | None) -> list[str]:
    failures = []
    for block in found:
        if "file" in block.options:
            target = folder / block.options["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
        if not block.runnable:
            continue
        if block.language == "console":
            for command, expected in console_steps(block.text):
                done = _run(command, block, folder, aws)
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
        elif block.language in ("sh", "bash", "python"):
            script = block.text
            if block.language == "python":
                program = folder / f"doc_block_{block.line}.py"
                program.write_text(block.text, encoding="utf-8")
                script = f"{shlex.quote(sys.executable)} {program.name}"
            done = _run(script, block, folder, aws)
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
