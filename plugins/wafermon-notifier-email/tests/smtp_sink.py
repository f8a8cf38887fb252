"""A real SMTP server for the e-mail notifier tests: aiosmtpd in its own process, storing every
message it accepts in a Maildir (read back with the stdlib ``mailbox``).

    python smtp_sink.py --port P --maildir DIR [--cert C --key K] [--user U --password PW]

Prints ``ready`` once it listens; stops on SIGTERM. With a certificate it offers STARTTLS;
with a user it requires AUTH (after STARTTLS when it has a certificate, as real servers do).
Recipients whose local part starts with ``tempfail`` get ``451`` and ``nouser`` get ``550``,
so the tests see real temporary and permanent refusals. (After /work/shared/infra/smtp.md.)
"""

from __future__ import annotations

import argparse
import signal
import ssl
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("tempfail"):
            return "451 4.3.0 mailbox busy, try again later"
        if address.startswith("nouser"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--user")
    parser.add_argument("--password")
    args = parser.parse_args()

    kw: dict = {}
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        kw.update(tls_context=context, require_starttls=False)
    if args.user:
        creds = (args.user.encode(), args.password.encode())

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and (auth_data.login, auth_data.password) == creds
            )
            return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535

        warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
        kw.update(authenticator=authenticator, auth_required=True, auth_require_tls=bool(args.cert))
    controller = Controller(
        Sink(args.maildir), hostname="127.0.0.1", port=args.port, server_hostname="smtp.test", **kw
    )
    controller.start()
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    main()
