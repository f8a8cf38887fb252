"""Docs that must keep up with the code: every hook has its reference section."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from wafermon import hookspecs

REPO = Path(__file__).resolve().parents[1]
HOOKS = [
    function
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(function, "wafermon_spec")
]


def test_hookspecs_are_found():
    assert len(HOOKS) >= 6


@pytest.mark.parametrize("hook", HOOKS, ids=lambda h: h.__name__)
def test_every_hook_has_a_docs_section_with_its_signature(hook):
    arguments = ", ".join(inspect.signature(hook).parameters)
    heading = f"## {hook.__name__}({arguments})"
    sections = re.findall(r"^## .*$", (REPO / "docs" / "plugin-hooks.md").read_text(), re.M)
    assert heading in sections, f"docs/plugin-hooks.md lacks the section {heading!r}"


@pytest.mark.parametrize("hook", HOOKS, ids=lambda h: h.__name__)
def test_every_hook_has_a_docstring(hook):
    assert len(inspect.getdoc(hook) or "") > 40
