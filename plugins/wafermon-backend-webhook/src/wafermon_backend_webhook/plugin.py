"""Hook implementations of wafermon-backend-webhook (the entry point names this module)."""

from wafermon import hookimpl


@hookimpl
def register_emitters(register):
    # By name: httpx is imported only when a site config uses the type.
    register("webhook", "wafermon_backend_webhook.emitter:WebhookEmitter")


@hookimpl
def register_notifiers(register):
    register("webhook", "wafermon_backend_webhook.notifier:WebhookNotifier")
    register("slack", "wafermon_backend_webhook.notifier:SlackNotifier")
    register("teams", "wafermon_backend_webhook.notifier:TeamsNotifier")
