"""wafermon's cross-language conformance runner (docs/conformance.md).

It runs every scenario in conformance/scenarios/ through each language's driver
(conformance/PROTOCOL.md), observes what reached the wire (a recording sidecar on 127.0.0.1,
or the files a direct-mode SDK wrote), judges it against the core's event schema and codec,
the protocol's wire rules and the scenario's expected events, and prints a language x
scenario matrix. Run it with ``nox -s conformance -- --lang python`` or
``python -m wafermon_conformance --help``. It never trusts what a driver says it sent.
"""
