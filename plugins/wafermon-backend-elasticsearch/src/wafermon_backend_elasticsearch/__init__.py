"""wafermon-backend-elasticsearch: events into Elasticsearch 8 daily indices, and back.

As a backend (an emitter the sidecar routes batches to, or the Python SDK's direct mode)::

    backends:
      - name: elk
        type: elasticsearch
        config:
          hosts: ["https://es1.fab1:9200", "https://es2.fab1:9200"]
          api_key: "${WAFERMON_ES_API_KEY}"     # or {file: PATH}; or username + password
          ca_certs: /etc/wafermon/es-ca.pem
          index_prefix: wafermon-events        # daily indices wafermon-events-YYYY.MM.DD
          retention_days: 30                   # whole indices older than this are deleted

As a source (a query adapter the gateway reads for /v1/query/external and /v1/data/unified)::

    sources:
      - name: elk
        type: elasticsearch
        config: {hosts: ["https://es1.fab1:9200"], api_key: "${WAFERMON_ES_API_KEY}"}

See docs/backends/elasticsearch.md for the mapping, the error handling and what Kibana shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wafermon.plugins import lazy_exports

if TYPE_CHECKING:
    from .adapter import AdapterSettings, ElasticsearchQueryAdapter, translate
    from .emitter import ElasticsearchEmitter, EmitterSettings
    from .indices import index_for, template_body

# Imported on first use: every wafermon command and host loads this package to find its hooks.
_EXPORTS = {
    "AdapterSettings": "adapter",
    "ElasticsearchQueryAdapter": "adapter",
    "translate": "adapter",
    "ElasticsearchEmitter": "emitter",
    "EmitterSettings": "emitter",
    "index_for": "indices",
    "template_body": "indices",
}
__all__ = [
    "AdapterSettings",
    "ElasticsearchEmitter",
    "ElasticsearchQueryAdapter",
    "EmitterSettings",
    "index_for",
    "template_body",
    "translate",
]
__getattr__ = lazy_exports(__name__, _EXPORTS)
