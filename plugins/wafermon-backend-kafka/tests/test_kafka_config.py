"""``wafermon config check`` and ``wafermon gateway --check`` name bad ``gateway.streams`` keys
(the entry's own and the plugin's settings) with their key paths and lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

WAFERMON = str(Path(sys.executable).parent / "wafermon")
SITE = """\
site_id: fab1
backends:
  - name: managed
    type: sql
    config: {url: "sqlite+aiosqlite:///w.db"}
gateway:
  streams:
    - name: events
      type: kafka
      max_in_flight: 0
      config:
        topic: "bad topic"
        grop: gateways
    - name: other
      type: kafak
"""


def check(tmp_path: Path, text: str, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    env = {**os.environ, "WAFERMON_LOAD_PLUGINS": "hosts,sql,kafka"}
    return subprocess.run(
        [WAFERMON, *args, str(path)], capture_output=True, text=True, env=env, cwd=tmp_path
    )


def test_config_check_names_stream_keys_and_lines(tmp_path):
    bad_entry = check(tmp_path, SITE, "config", "check")
    assert bad_entry.returncode != 0
    out = bad_entry.stdout + bad_entry.stderr
    assert "gateway.streams[0].max_in_flight (line 10): must be greater than 0" in out, out

    fixed = SITE.replace("max_in_flight: 0", "max_in_flight: 100")
    result = check(tmp_path, fixed, "config", "check")
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "gateway.streams[1]" in out, out
    assert "no installed plugin provides consumer type 'kafak'" in out, out

    only_kafka = fixed.split("    - name: other")[0]
    result = check(tmp_path, only_kafka, "config", "check")
    out = result.stdout + result.stderr
    assert "gateway.streams[0].config.grop (line 13): unknown field; did you mean 'group'?" in out

    result = check(tmp_path, only_kafka.replace("grop:", "group:"), "config", "check")
    out = result.stdout + result.stderr
    assert "gateway.streams[0].config.topic (line 12): must be 1-249 letters" in out, out


def test_a_good_stream_entry_passes_gateway_check(tmp_path, kafka_config):
    config = "\n".join(f"        {k}: {v!r}" for k, v in kafka_config.items()).replace("'", '"')
    text = SITE.split("      max_in_flight")[0] + "      config:\n" + config + "\n"
    result = check(tmp_path, text, "config", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    result = check(tmp_path, text, "gateway", "--check", "--config")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stream events (KafkaConsumer)" in result.stdout
