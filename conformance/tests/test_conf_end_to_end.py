"""The whole runner with the real Python driver and SDK, on a few scenarios; and the ways a
language can fail to run (no driver, a failing build)."""

from __future__ import annotations

import json

from wafermon_conformance import cli, paths

SCENARIOS = [
    "job_with_subjobs_and_progress",
    "direct_mode_filesystem",
    "sidecar_503_retry_after",
    "invalid_config_mode_misspelt",
]


def argv(tmp_path, *extra: str) -> list[str]:
    return [
        "--results",
        str(tmp_path / "results"),
        "--known-failures-dir",
        str(tmp_path / "known"),
        *(arg for name in SCENARIOS for arg in ("--scenario", name)),
        *extra,
    ]


def test_the_python_driver_passes_and_the_matrix_is_written(tmp_path, capsys):
    assert cli.main(argv(tmp_path, "--lang", "python")) == 0
    out = capsys.readouterr().out
    assert "conformance: OK" in out
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    python = results["languages"]["python"]
    assert python["hello"]["sdk"] == "python"
    assert {n: s["verdict"] for n, s in python["scenarios"].items()} == dict.fromkeys(
        SCENARIOS, "pass"
    )
    assert python["scenarios"]["sidecar_503_retry_after"]["requests"][0]["status"] == 503
    markdown = (tmp_path / "results" / "results.md").read_text()
    assert "| scenario | python |" in markdown
    assert "| direct_mode_filesystem | pass |" in markdown


def test_a_listed_failure_that_passes_fails_and_the_update_command_fixes_it(tmp_path, capsys):
    known = tmp_path / "known"
    known.mkdir()
    (known / "python.txt").write_text("direct_mode_filesystem  # pretend it was broken\n")
    assert cli.main(argv(tmp_path, "--lang", "python")) == 1
    out = capsys.readouterr().out
    assert "python: direct_mode_filesystem passes but is listed as a known failure" in out
    assert "nox -s conformance -- --lang python --update-known-failures" in out
    assert cli.main(argv(tmp_path, "--lang", "python", "--update-known-failures")) == 0
    assert cli.main(argv(tmp_path, "--lang", "python")) == 0


def registry(tmp_path, text: str):
    path = tmp_path / "languages.toml"
    path.write_text(text)
    return ["--languages-file", str(path)]


def test_a_missing_driver_is_reported_and_fails_the_run(tmp_path, capsys):
    extra = registry(tmp_path, '[cobol]\ndriver = ["sdk-cobol/build/driver"]\n')
    assert cli.main(argv(tmp_path, *extra)) == 1
    out = capsys.readouterr().out
    assert "the driver sdk-cobol/build/driver does not exist" in out
    assert "cobol: could not run" in out
    assert (
        "| job_with_subjobs_and_progress | not run |"
        in (tmp_path / "results" / "results.md").read_text()
    )


def test_a_failing_build_is_reported_with_its_command(tmp_path, capsys):
    extra = registry(
        tmp_path,
        '[cobol]\nbuild = [["{python}", "-c", "raise SystemExit(1)"]]\n'
        'driver = ["sdk-cobol/build/driver"]\n',
    )
    assert cli.main(argv(tmp_path, *extra)) == 1
    out = capsys.readouterr().out
    assert "the driver does not build: `" in out
    assert "raise SystemExit(1)` exited with status 1" in out


def test_a_driver_that_dies_at_start_is_reported(tmp_path, capsys):
    extra = registry(tmp_path, '[broken]\ndriver = ["{python}", "-c", "import sys; sys.exit(3)"]\n')
    assert cli.main(argv(tmp_path, *extra)) == 1
    assert "the driver does not start: the driver exited with status 3" in capsys.readouterr().out


def test_an_unknown_language_is_a_usage_error(tmp_path, capsys):
    assert cli.main(argv(tmp_path, "--lang", "fortran")) == 2
    assert "unknown language 'fortran'" in capsys.readouterr().err


def test_the_shipped_registry_knows_python_and_c():
    from wafermon_conformance import languages

    found = languages.load(paths.LANGUAGES)
    assert set(found) >= {"python", "c"}
    assert found["c"].driver_command() == ["sdk-c/build/wafermon-conformance-driver"]
