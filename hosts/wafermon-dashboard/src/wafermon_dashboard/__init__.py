"""wafermon dashboards (Dash).

``wafermon dashboard --gateway URL`` (or ``--central URL``) serves the views (``app``); the
dashboard reads everything over HTTP (``client``). The one-command stack that runs it next to
the hosts, ``wafermon up``, is the wafermon-stack package.
"""

__version__ = "0.1.0"
