"""Hook implementations of wafermon-notifier-email (the entry point names this module)."""

from wafermon import hookimpl


@hookimpl
def register_notifiers(register):
    # By name: aiosmtplib is imported only when a site config uses the type.
    register("email", "wafermon_notifier_email.notifier:EmailNotifier")
