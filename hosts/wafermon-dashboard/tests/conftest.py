"""Fixtures for the dashboard tests: one running stack per session, and a headless Chromium.

Browser tests fail (they never skip) when Chromium or Playwright is missing, with the
commands that install them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from db_helpers import CHROMIUM, CHROMIUM_ARGS, Stack, require_browser, running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="session")
def browser():
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # a shared 2-core machine: callbacks can take seconds

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page (1400x900); browser errors are collected in ``page.errors``."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.errors = errors
    yield page
    context.close()
