"""Every ``wafermon`` command and host loads every installed plugin's package to find its
hooks: a package that imported its client library there would make every host pay for it
(the S3 and Elasticsearch clients alone took a sidecar from 47 to 135 MB of RSS)."""

from __future__ import annotations

import json
import subprocess
import sys

#: Client libraries of the backends, imported only by a site that configures one.
CLIENT_LIBRARIES = ["aiobotocore", "botocore", "pyarrow", "elasticsearch", "aiokafka", "nats"]


def test_loading_every_plugin_imports_no_client_library():
    code = (
        "import contextlib, io, json, sys\n"
        "from wafermon.cli import main\n"
        "from wafermon.plugins import Plugins\n"
        "sys.argv = ['wafermon', '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main()\n"
        "plugins = Plugins.discover()\n"
        "broken = [i.name for i in plugins.info() if i.error]\n"
        "print(json.dumps({'broken': broken, 'plugins': [i.name for i in plugins.info()],\n"
        "                  'modules': sorted({m.split('.')[0] for m in sys.modules})}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    seen = json.loads(out.splitlines()[-1])
    assert seen["broken"] == []
    assert {"s3", "elasticsearch", "kafka", "nats", "zabbix"} <= set(seen["plugins"])
    assert [m for m in CLIENT_LIBRARIES if m in seen["modules"]] == []
