"""``wafermon config check`` and ``wafermon sidecar|gateway --check`` run one validation."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

from wafermon.cli import cli
from wafermon.plugins import Plugins

SITE = """\
site_id: fab1
backends:
  - name: files
    type: filesystem
    config: {root: ./data/events}
sidecar:
  listn: 127.0.0.1:17000
  spool:
    max_byte: 1GiB
"""


@pytest.fixture
def wafermon():
    plugins = Plugins.discover()
    plugins.pm.hook.register_commands(cli=cli)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args))


def test_a_misspelt_sidecar_key_fails_both_checks_with_the_same_words(tmp_path, wafermon):
    path = tmp_path / "site.yaml"
    path.write_text(textwrap.dedent(SITE))
    expected = [
        "sidecar.listn (line 7): unknown field; did you mean 'listen'?",
        "sidecar.spool.max_byte (line 9): unknown field; did you mean 'max_bytes'?",
    ]
    checked = wafermon("config", "check", str(path))
    sidecar = wafermon("sidecar", "--check", "-c", str(path))
    assert checked.exit_code == 1
    assert sidecar.exit_code == 1
    for line in expected:
        assert f"  - {line}" in checked.output, checked.output
        assert f"  - {line}" in sidecar.output, sidecar.output

    path.write_text(
        textwrap.dedent(SITE).replace("listn", "listen").replace("max_byte:", "max_bytes:")
    )
    checked = wafermon("config", "check", str(path))
    assert checked.exit_code == 0, checked.output
    assert wafermon("sidecar", "--check", "-c", str(path)).exit_code == 0


def test_gateway_section_is_checked_only_when_present(tmp_path, wafermon):
    path = tmp_path / "site.yaml"
    path.write_text("site_id: fab1\ngateway:\n  store: nowhere\n")
    checked = wafermon("config", "check", str(path))
    assert checked.exit_code == 1
    assert "gateway.store (line 3)" in checked.output, checked.output
    path.write_text("site_id: fab1\n")
    assert wafermon("config", "check", str(path)).exit_code == 0
