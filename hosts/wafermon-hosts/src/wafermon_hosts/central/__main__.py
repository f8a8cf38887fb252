"""``python -m wafermon_hosts.central`` is ``wafermon central``."""

from .cli import central

if __name__ == "__main__":
    central(prog_name="wafermon central")
