"""wafermon dashboards (Dash) and the one-command stack.

``wafermon dashboard --gateway URL`` (or ``--central URL``) serves the views (``app``); the
dashboard reads everything over HTTP (``client``). ``wafermon up`` runs sidecar, gateway,
central and dashboard as child processes on embedded defaults (``up``), and ``wafermon demo``
feeds realistic wafer jobs (``demo``).
"""

__version__ = "0.1.0"
