"""``wafermon plugin new NAME``: a new plugin package from the template that ships in core.

The template (``wafermon/template``, files ending ``.tmpl``, ``$$name``-style placeholders of
``string.Template``) is a working emitter with tests that run wafermon's contract suite, so a
plugin starts green and stays checked as its author replaces the skeleton. Plain string
substitution and no template engine: core gains no dependency for it.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from . import __version__

NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")


def plugin_names(name: str) -> dict[str, str]:
    """The names a plugin called ``name`` goes by; ValueError if ``name`` cannot be one."""
    if not NAME.fullmatch(name) or len(name) > 40:
        raise ValueError(
            f"plugin name {name!r}: use lowercase letters, digits and single '-' or '_' "
            "between them, starting with a letter (at most 40 characters)"
        )
    package = "wafermon_backend_" + name.replace("-", "_")
    return {
        "name": name,  # the type name and entry-point name
        "dist": f"wafermon-backend-{name}",
        "package": package,
        "cls": "".join(part.capitalize() for part in re.split(r"[-_]", name)),
        "core_version": __version__,
    }


def _files(folder: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    found = []
    for item in sorted(folder.iterdir(), key=lambda i: i.name):
        if item.is_dir() and item.name != "__pycache__":
            found += _files(item, f"{prefix}{item.name}/")
        elif item.name.endswith(".tmpl"):
            found.append((prefix + item.name.removesuffix(".tmpl"), item))
    return found


def new_plugin(name: str, directory: Path) -> Path:
    """Write the package ``wafermon-backend-<name>/`` under ``directory``; returns its path.

    Refuses to write into an existing folder (nothing is overwritten).
    """
    names = plugin_names(name)
    target = directory / names["dist"]
    if target.exists():
        raise ValueError(f"{target} exists already; choose another name or folder")
    template = resources.files(__package__) / "template"
    for relative, source in _files(template):
        path = target / relative.replace("src/pkg/", f"src/{names['package']}/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(source.read_text("utf-8")).substitute(names), "utf-8")
    return target
