"""The whole wafermon stack on one machine, and realistic demo jobs.

``wafermon up`` runs sidecar, gateway, central and dashboard as child processes on embedded
defaults (``up``); ``wafermon demo`` feeds realistic wafer jobs to a sidecar, or prints them
(``demo``). Everything the stack runs comes from the other packages: this one only wires them.
"""

__version__ = "0.1.0"
