"""The plugin module the ``wafermon`` entry point names: hook implementations only."""

from wafermon import hookimpl


@hookimpl
def register_emitters(register):
    # Imported on first use: the client and aiohttp cost start-up time to hosts not using ES.
    register("elasticsearch", "wafermon_backend_elasticsearch.emitter:ElasticsearchEmitter")


@hookimpl
def register_query_adapters(register):
    register("elasticsearch", "wafermon_backend_elasticsearch.adapter:ElasticsearchQueryAdapter")
