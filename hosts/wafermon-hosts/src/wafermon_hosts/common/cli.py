"""``wafermon gateway|sidecar|central``: one command builder, so the hosts load, check, serve
and fail the same way.

Each host's ``cli.py`` gives a ``load`` function; the builder does the rest: logging, the site
config and plugins (every config problem printed with its path and line, exit 1), ``--check``,
serving with Hypercorn and the exit code. Heavy imports (Starlette, Hypercorn, the host's app)
happen inside the command, so every other ``wafermon`` command starts as fast as before this
package was installed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import attrs
import click


@attrs.frozen(kw_only=True)
class Loaded:
    """A host built from its config, ready to serve; what ``load`` returns."""

    host: Any  # Gateway, Sidecar or Central: has .settings (listen, tls) and .site_id
    create_app: Callable[[], Any]
    identity: str  # "site fab1" / "central hq", as --check prints it
    serves: str  # what --check adds after the URL: store, spool, sites...
    log_fields: dict[str, Any]  # added to the "starting" log line
    on_stop: Sequence[Callable[[], None]] = ()  # run on SIGTERM before Hypercorn's shutdown
    served: Sequence[str] = ()  # token scopes its routes need (common.auth)
    warnings: Sequence[str] = ()  # logged at every start besides insecure (verify_tls: false)


#: ``load(config_file, listen)`` -> Loaded; raises ConfigError, PluginError, TracingUnavailable.
Load = Callable[[Any, Any, str | None], Loaded]


def fail(headline: str, details: Sequence[str] = ()) -> NoReturn:
    """Print the error (URL credentials stripped, as everywhere) and exit 1."""
    from wafermon import strip_credentials

    click.echo(strip_credentials(f"error: {headline}"), err=True)
    for line in details:
        click.echo(strip_credentials(f"  - {line}"), err=True)
    sys.exit(1)


def host_command(name: str, doc: str, load: Load, *, check_help: str) -> click.Command:
    """The click command ``wafermon <name>``; ``doc`` is its help text."""

    @click.command(name=name, help=doc)
    @click.option("-c", "--config", "config_file", required=True, type=click.Path(dir_okay=False))
    @click.option("--listen", metavar="HOST:PORT", help=f"Overrides {name}.listen.")
    @click.option("--check", is_flag=True, help=check_help)
    @click.option(
        "--log-level",
        default="info",
        show_default=True,
        type=click.Choice(["debug", "info", "warning", "error"]),
    )
    def command(config_file: str, listen: str | None, check: bool, log_level: str) -> None:
        from wafermon import ConfigError, PluginError
        from wafermon.config import load_config
        from wafermon.plugins import Plugins

        from .logs import configure_logging, get_logger
        from .serve import run
        from .settings import security_warnings
        from .tracing import TracingUnavailable

        configure_logging(log_level.upper())
        log = get_logger(f"wafermon_hosts.{name}")
        try:
            loaded = load(load_config(config_file), Plugins.discover(), listen)
        except ConfigError as exc:
            fail(f"{exc.context}: invalid config", [str(p) for p in exc.problems])
        except (PluginError, TracingUnavailable) as exc:
            fail(str(exc))
        host, settings = loaded.host, loaded.host.settings
        scheme = "https" if settings.tls else "http"
        if check:
            click.echo(
                f"{config_file}: OK ({loaded.identity}); {name} would serve "
                f"{scheme}://{settings.listen} {loaded.serves}"
            )
            return
        app = loaded.create_app()
        mutual = bool(settings.tls and settings.tls.client_ca)
        log.info(
            f"{name} starting",
            listen=settings.listen,
            scheme=scheme,
            mutual_tls=mutual,
            **loaded.log_fields,
        )
        for warning in [*security_warnings(name, settings, loaded.served), *loaded.warnings]:
            log.warning(warning)
        try:
            run(
                app,
                listen=settings.listen,
                certfile=settings.tls.cert if settings.tls else None,
                keyfile=settings.tls.key if settings.tls else None,
                client_ca=settings.tls.client_ca if settings.tls else None,
                on_stop=list(loaded.on_stop),
            )
        except Exception as exc:
            start_error = getattr(host, "start_error", None)
            if start_error is None:
                log.error(f"{name} failed", exc_info=exc)
                fail(f"{name} failed: {exc}")
            fail(start_error)
        log.info(f"{name} exited", site_id=host.site_id)

    return command
