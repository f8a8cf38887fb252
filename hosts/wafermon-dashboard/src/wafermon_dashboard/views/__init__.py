"""One module per view: ``layout(ctx, query)`` builds the page, ``register(app, ctx)`` adds its
callbacks. Pages are chosen by URL path in ``wafermon_dashboard.app``."""
