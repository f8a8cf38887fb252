"""``wafermon plugin new`` makes a plugin whose own tests pass in a fresh virtualenv.

The generated package is installed (with its ``test`` extra, which pulls in
``wafermon-core[testing]``) together with core from this checkout, and its tests, including
wafermon.testing's contract suite, are run there with pytest, as the README it ships says.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
    )


def test_a_generated_plugin_passes_its_own_tests_in_a_fresh_venv(tmp_path):
    uv = shutil.which("uv")
    assert uv, "uv is required to build the venv (nox -s integration installs it)"
    assert run(uv, "venv", "-q", "--python", sys.executable, ".venv", cwd=tmp_path).returncode == 0
    python = str(tmp_path / ".venv" / "bin" / "python")
    installed = run(
        uv, "pip", "install", "-q", "--python", python, str(REPO / "core"), cwd=tmp_path
    )
    assert installed.returncode == 0, installed.stdout

    made = run(
        str(tmp_path / ".venv" / "bin" / "wafermon"), "plugin", "new", "lab-archive", cwd=tmp_path
    )
    assert made.returncode == 0, made.stdout
    plugin = tmp_path / "wafermon-backend-lab-archive"
    assert made.stdout.startswith(f"created {plugin.name}\n")
    assert (plugin / "src" / "wafermon_backend_lab_archive" / "emitter.py").is_file()

    extra = run(uv, "pip", "install", "-q", "--python", python, f"{plugin}[test]", cwd=tmp_path)
    assert extra.returncode == 0, extra.stdout
    listed = run(str(tmp_path / ".venv" / "bin" / "wafermon"), "plugins", cwd=tmp_path)
    assert "lab-archive (wafermon-backend-lab-archive 0.1.0)" in listed.stdout, listed.stdout

    tests = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", cwd=plugin)
    assert tests.returncode == 0, tests.stdout
    assert "TestLabArchiveContract::test_a_cancelled_emit_does_not_corrupt_later_ones" in (
        tests.stdout
    )
    assert "\n11 passed" in tests.stdout, tests.stdout


def test_plugin_new_refuses_a_bad_name_and_an_existing_folder(tmp_path):
    wafermon = str(Path(sys.executable).parent / "wafermon")
    bad = run(wafermon, "plugin", "new", "My Plugin", cwd=tmp_path)
    assert bad.returncode == 1
    assert "plugin name 'My Plugin'" in bad.stdout
    assert run(wafermon, "plugin", "new", "dup", cwd=tmp_path).returncode == 0
    again = run(wafermon, "plugin", "new", "dup", cwd=tmp_path)
    assert again.returncode == 1
    assert "exists already" in again.stdout
