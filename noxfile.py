"""Sessions for every package in the monorepo, generated from the folder layout.

A Python distribution is any folder with a pyproject.toml under core/, plugins/, hosts/ or
sdk-python/; each gets its own ``tests(<folder>)`` session in a fresh virtualenv, so a package
that forgets to declare a dependency fails here. ``nox`` alone runs what README's test command
promises: lint, every package's tests and the cross-package tests in tests/.
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "tests", "integration"]
nox.options.reuse_existing_virtualenvs = True


def python_packages() -> list[str]:
    """Folders of every Python distribution, core first."""
    patterns = [
        "core/pyproject.toml",
        "plugins/*/pyproject.toml",
        "hosts/*/pyproject.toml",
        "sdk-python/pyproject.toml",
    ]
    found = {str(p.parent.relative_to(ROOT)) for pattern in patterns for p in ROOT.glob(pattern)}
    return sorted(found, key=lambda folder: (folder != "core", folder))


PACKAGES = python_packages()


def install_packages(session: nox.Session, *folders: str, extra: str = "") -> None:
    """Install core and the given packages from this checkout (never from an index)."""
    targets = dict.fromkeys(["core", *folders])
    session.install(*(arg for f in targets for arg in ("-e", f"{f}{extra}")))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
@nox.parametrize("package", PACKAGES, ids=PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """One package's own test suite, in a venv holding only that package and core."""
    install_packages(session, package, extra="[test]")
    session.run("pytest", f"{package}/tests", *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """Tests across packages and docs: the plugin tutorial, hook docs, the README commands."""
    install_packages(session, *PACKAGES, extra="[test]")
    session.install("uv")  # tests/test_tutorial.py builds a fresh venv with it
    session.run("pytest", "tests", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks; writes bench-results.json (figures as ratios to same-run baselines)."""
    install_packages(session, *PACKAGES)
    session.run("python", "bench/run.py", "--out", "bench-results.json", *session.posargs)
