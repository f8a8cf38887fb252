"""Sessions for every package in the monorepo, generated from the folder layout.

A Python distribution is any folder with a pyproject.toml under core/, plugins/, hosts/,
sdk-python/ or conformance/; each gets its own ``tests(<folder>)`` session in a fresh
virtualenv, so a package that forgets to declare a dependency fails here. ``nox`` alone runs
what README's test command promises: lint, every package's tests, the cross-package tests in
tests/ and the cross-language conformance suite.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tomllib
from pathlib import Path

import nox
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parent
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = [
    "lint",
    "tests",
    "integration",
    "conformance",
    "sdk_c",
    "sdk_perl",
    "sdk_r",
    "sdk_java",
]
nox.options.reuse_existing_virtualenvs = True


def python_packages() -> dict[str, str]:
    """Distribution name -> folder, for every Python distribution; core first."""
    patterns = [
        "core/pyproject.toml",
        "plugins/*/pyproject.toml",
        "hosts/*/pyproject.toml",
        "sdk-python/pyproject.toml",
        "conformance/pyproject.toml",
    ]
    found = {}
    for pattern in patterns:
        for path in sorted(ROOT.glob(pattern)):
            name = tomllib.loads(path.read_text())["project"]["name"]
            found[canonicalize_name(name)] = str(path.parent.relative_to(ROOT))
    return found


PACKAGES = python_packages()
FOLDERS = list(PACKAGES.values())


def local_requirements(folder: str, extra: str) -> list[str]:
    """Folders of the checkout's own distributions that ``folder`` (with ``extra``) requires,
    directly or through another of them (wafermon-stack needs the gateway backend, so the
    dashboard's tests, which need the stack, need it from the checkout too)."""
    found: list[str] = []
    todo = [(folder, extra)]
    while todo:
        current, current_extra = todo.pop()
        project = tomllib.loads((ROOT / current / "pyproject.toml").read_text())["project"]
        wanted = project.get("dependencies", []) + project.get("optional-dependencies", {}).get(
            current_extra, []
        )
        for spec in wanted:
            name = canonicalize_name(Requirement(spec).name)
            if name in PACKAGES and PACKAGES[name] not in found:
                found.append(PACKAGES[name])
                todo.append((PACKAGES[name], ""))
    return sorted(f for f in found if f != folder)


def install_packages(session: nox.Session, *folders: str, extra: str = "") -> None:
    """Install the folders, and every checkout distribution they need, from this checkout.

    Sibling distributions (wafermon-core, wafermon-backend-*) are never taken from an index.
    """
    targets = dict.fromkeys(
        f for folder in folders for f in ["core", *local_requirements(folder, extra), folder]
    )
    suffix = f"[{extra}]" if extra else ""
    session.install(*(arg for f in targets for arg in ("-e", f + (suffix if f in folders else ""))))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree; mypy ([tool.mypy] in
    pyproject.toml: strict on the core and its plugin API, default checks on the hosts)."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    install_packages(session, "hosts/wafermon-hosts", extra="otel")  # tracing imports otel
    # wafermon.testing is type-checked against pytest and pytest-asyncio: core's testing extra.
    session.install("-e", "core[testing]", "mypy>=1.11", "types-PyYAML")
    session.run("mypy")


@nox.session
@nox.parametrize("package", FOLDERS, ids=FOLDERS)
def tests(session: nox.Session, package: str) -> None:
    """One package's own test suite, in a venv holding only it and what it declares."""
    install_packages(session, package, extra="test")
    session.run("pytest", f"{package}/tests", *session.posargs)


@nox.session
def integration(session: nox.Session) -> None:
    """Tests across packages and docs: the plugin tutorial, hook docs, the README commands."""
    install_packages(session, *FOLDERS, extra="test")
    session.install("uv")  # tests/test_tutorial.py builds a fresh venv with it
    session.run("pytest", "tests", *session.posargs)


@nox.session
def conformance(session: nox.Session) -> None:
    """Every SDK against the conformance scenarios (docs/conformance.md); `-- --lang c` for one.

    The runner builds each language's driver with the commands in conformance/languages.toml
    (C: cmake into sdk-c/build) and says so when a driver is missing or does not build. The
    Python driver runs in this venv, so the Python SDK and its direct-mode backend go in too.
    """
    install_packages(session, "conformance", "sdk-python", "plugins/wafermon-backend-filesystem")
    session.run("python", "-m", "wafermon_conformance", *session.posargs)


@nox.session
def sdk_r(session: nox.Session) -> None:
    """The R SDK (sdk-r/, docs/sdk-r.md): R CMD build, R CMD check, the example.

    check installs the package, runs its examples and the testthat tests (settings, events,
    direct mode, with_monitored, the spool, fork, and tests/testthat/test-sidecar.R against a
    real ``wafermon sidecar`` from this venv: WAFERMON_BIN, missing is a failure, never a
    skip). A WARNING or ERROR fails the session. The empty local repository keeps check off
    CRAN (unreachable here). Needs Debian's r-base-core and r-cran-* packages (scripts/test).
    """
    install_packages(session, "hosts/wafermon-hosts", "plugins/wafermon-backend-filesystem")
    tmp = Path(session.create_tmp()).resolve() / "sdk-r"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "repo" / "src" / "contrib").mkdir(parents=True)
    (tmp / "repo" / "src" / "contrib" / "PACKAGES").write_text("")
    profile = tmp / "Rprofile"
    profile.write_text(f'options(repos = c(CRAN = "file://{tmp / "repo"}"))\n')
    env = {
        "R_PROFILE_USER": str(profile),
        "WAFERMON_BIN": str(Path(session.bin) / "wafermon"),
        "WAFERMON_REQUIRE_SERVERS": "1",
        "_R_CHECK_FORCE_SUGGESTS_": "true",
    }
    with session.chdir(tmp):
        session.run("R", "CMD", "build", str(ROOT / "sdk-r"), env=env, external=True)
        tarball = next(tmp.glob("wafermon_*.tar.gz"))
        session.run("R", "CMD", "check", "--no-manual", tarball.name, env=env, external=True)
    check = tmp / "wafermon.Rcheck"
    summary = re.search(
        r"\[ FAIL (\d+) \| WARN (\d+) \| SKIP (\d+) \| PASS (\d+) \]",
        (check / "tests" / "testthat.Rout").read_text(),
    )
    if summary is None:
        session.error("no testthat summary in tests/testthat.Rout")
    failed, _, skipped, passed = (int(n) for n in summary.groups())
    print(f"R: {passed} passed, {failed} failed, {skipped} skipped")
    status = (check / "00check.log").read_text().strip().splitlines()[-1]
    if "WARNING" in status or "ERROR" in status or failed or skipped:
        session.error(f"R CMD check: {status}; tests: {failed} failed, {skipped} skipped")
    example = tmp / "example-events"
    session.run(
        "Rscript",
        "sdk-r/inst/examples/wafer_lot.R",
        env={
            "R_LIBS": str(check),
            "WAFERMON_MODE": "direct",
            "WAFERMON_SITE_ID": "fab1",
            "WAFERMON_DIRECT_URL": f"file://{example}",
            "WAFERMON_SPOOL_DIR": str(tmp / "example-spool"),
        },
        external=True,
    )
    stored = sum(1 for f in example.glob("fab1/*/events.jsonl") for _ in f.open())
    if stored != 2 + 3 * 3:
        session.error(f"the example should have written 11 events, found {stored}")


@nox.session
def sdk_c(session: nox.Session) -> None:
    """The C SDK (sdk-c/, docs/sdk-c.md): CMake build, ctest, install, the example via pkg-config.

    ctest runs the unit tests, each again under valgrind memcheck, the end-to-end test against
    a real ``wafermon sidecar`` from this venv, and the S3 test against the SeaweedFS that
    scripts/services starts (WAFERMON_TEST_S3_ENDPOINT). WAFERMON_REQUIRE_SERVERS makes a
    missing server a failure, never a skip. Needs Debian's cmake, pkg-config, valgrind,
    libcurl4-openssl-dev and libcjson-dev (scripts/test installs them).
    """
    install_packages(
        session,
        "hosts/wafermon-hosts",
        "plugins/wafermon-backend-filesystem",
        "plugins/wafermon-backend-gateway",
    )
    tmp = Path(session.create_tmp()).resolve()
    build, prefix = tmp / "sdk-c-build", tmp / "sdk-c-prefix"
    wafermon = Path(session.bin) / "wafermon"
    session.run(
        "cmake", "-S", "sdk-c", "-B", str(build), f"-DWAFERMON_BIN={wafermon}", external=True
    )
    session.run("cmake", "--build", str(build), "-j2", external=True)
    session.run(
        "ctest",
        "--test-dir",
        str(build),
        "--output-on-failure",
        "-j2",
        *session.posargs,
        env={"WAFERMON_REQUIRE_SERVERS": "1"},
        external=True,
    )
    # The same install + pkg-config build as ctest's install_example, as a user would do it.
    session.run("cmake", "--install", str(build), "--prefix", str(prefix), external=True)
    pkgconfig = next(prefix.glob("lib*/pkgconfig"))
    flags = session.run(
        "pkg-config",
        "--cflags",
        "--libs",
        "wafermon",
        env={"PKG_CONFIG_PATH": str(pkgconfig)},
        external=True,
        silent=True,
    )
    example = tmp / "wafer_lot"
    session.run(
        "cc",
        "-std=c11",
        "-Wall",
        "-Werror",
        "sdk-c/examples/wafer_lot.c",
        *str(flags).split(),
        "-pthread",
        f"-Wl,-rpath,{pkgconfig.parent}",
        "-o",
        str(example),
        external=True,
    )
    session.run(
        str(example),
        "12",
        env={
            "WAFERMON_MODE": "direct",
            "WAFERMON_SITE_ID": "fab1",
            "WAFERMON_DIRECT_URL": f"file://{tmp / 'example-events'}",
            "WAFERMON_SPOOL_DIR": str(tmp / "example-spool"),
        },
        external=True,
    )


@nox.session
def sdk_perl(session: nox.Session) -> None:
    """The Perl SDK (sdk-perl/, docs/sdk-perl.md): perl Makefile.PL && make && make test.

    Built in a copy under the session's tmp, since MakeMaker writes Makefile and blib/ in place.
    ``make test`` runs t/*.t: settings, wire, direct mode, the monitored block and guard, the
    spool and its replayer, fork safety, and t/10-sidecar.t against a real ``wafermon sidecar``
    from this venv (WAFERMON_BIN; missing is a failure, never a skip). Then the example of
    docs/sdk-perl.md runs. Needs Debian's libjson-xs-perl, libcrypt-urandom-perl,
    libyaml-libyaml-perl and libtoml-tiny-perl (scripts/test installs them).
    """
    install_packages(session, "hosts/wafermon-hosts", "plugins/wafermon-backend-filesystem")
    tmp = Path(session.create_tmp()).resolve()
    build = tmp / "sdk-perl-build"
    shutil.rmtree(build, ignore_errors=True)
    shutil.copytree(
        ROOT / "sdk-perl",
        build,
        ignore=shutil.ignore_patterns("blib", "Makefile", "Makefile.old", "MYMETA.*", "pm_to_blib"),
    )
    env = {"WAFERMON_BIN": str(Path(session.bin) / "wafermon")}
    with session.chdir(build):
        session.run("perl", "Makefile.PL", external=True)
        session.run("make", external=True)
        session.run("make", "test", external=True, env=env)
    example_root = tmp / "example-events"
    shutil.rmtree(example_root, ignore_errors=True)
    session.run(
        "perl",
        f"-I{build / 'blib' / 'lib'}",
        "sdk-perl/examples/wafer_lot.pl",
        "4",
        env={
            "WAFERMON_MODE": "direct",
            "WAFERMON_SITE_ID": "fab1",
            "WAFERMON_DIRECT_URL": f"file://{example_root}",
            "WAFERMON_SPOOL_DIR": str(tmp / "example-spool"),
        },
        external=True,
    )
    stored = sum(1 for f in example_root.glob("fab1/*/events.jsonl") for _ in f.open())
    if stored != 2 + 4 * 3:
        session.error(f"the example should have written 14 events, found {stored}")


@nox.session
def sdk_java(session: nox.Session) -> None:
    """The Java SDK (sdk-java/, docs/sdk-java.md): ``mvn -B verify``, then the example.

    verify compiles with -Xlint, runs the JUnit 5 tests (settings, JSON against Jackson, the
    queue's bounds, direct mode, and SidecarTest against a real ``wafermon sidecar`` from this
    venv, passed as -Dwafermon.bin; S3Test against the SeaweedFS of scripts/services,
    WAFERMON_TEST_S3_ENDPOINT: missing servers are failures, never skips) and builds the jar,
    sources and javadoc jars. Maven's cache is ~/.m2 (outside the repository): the first run
    downloads what it needs; once a run with this pom.xml passed, a marker in the cache makes
    later runs offline (-o). Needs Debian's openjdk-17-jdk-headless and maven (scripts/test).
    """
    install_packages(session, "hosts/wafermon-hosts", "plugins/wafermon-backend-filesystem")
    pom = ROOT / "sdk-java" / "pom.xml"
    cache = Path.home() / ".m2" / "repository"
    marker = cache / f".wafermon-sdk-java-{hashlib.sha256(pom.read_bytes()).hexdigest()[:16]}"
    offline = ["-o"] if marker.exists() else []
    wafermon = Path(session.bin) / "wafermon"
    session.run(
        "mvn",
        "-B",
        "-ntp",
        *offline,
        "-f",
        str(pom),
        "verify",
        f"-Dwafermon.bin={wafermon}",
        *session.posargs,
        external=True,
    )
    cache.mkdir(parents=True, exist_ok=True)
    marker.touch()
    tmp = Path(session.create_tmp()).resolve()
    example_root = tmp / "java-example-events"
    shutil.rmtree(example_root, ignore_errors=True)
    session.run(
        "java",
        "-cp",
        str(ROOT / "sdk-java" / "target" / "wafermon-sdk-0.1.0.jar"),
        "sdk-java/examples/WaferLot.java",
        "12",
        env={
            "WAFERMON_MODE": "direct",
            "WAFERMON_SITE_ID": "fab1",
            "WAFERMON_DIRECT_URL": f"file://{example_root}",
            "WAFERMON_SPOOL_DIR": str(tmp / "java-example-spool"),
        },
        external=True,
    )
    stored = sum(1 for f in example_root.glob("fab1/*/events.jsonl") for _ in f.open())
    if stored != 2 + 12 * 4:
        session.error(f"the example should have written 50 events, found {stored}")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks; writes bench-results.json (figures as ratios to same-run baselines)."""
    install_packages(session, *FOLDERS)
    session.install("pytest>=8")  # wafermon.testing builds the load (bench/kafka_bench.py)
    session.run("python", "bench/run.py", "--out", "bench-results.json", *session.posargs)
