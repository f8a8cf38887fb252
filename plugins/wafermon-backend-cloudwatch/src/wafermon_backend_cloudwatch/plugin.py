"""Hook implementations of wafermon-backend-cloudwatch (the entry point names this module).

Registered by name so aiobotocore is imported only when a site config uses the type.
"""

from wafermon import hookimpl


@hookimpl
def register_emitters(register):
    register("cloudwatch", "wafermon_backend_cloudwatch.emitter:CloudWatchEmitter")


@hookimpl
def register_query_adapters(register):
    register("cloudwatch", "wafermon_backend_cloudwatch.adapter:CloudWatchQueryAdapter")
