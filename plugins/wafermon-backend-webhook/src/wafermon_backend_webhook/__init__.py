"""wafermon-backend-webhook: POST event batches as signed JSON, or chat messages on failures.

    backends:
      - name: hook
        type: webhook
        config:
          url: ${WAFERMON_WEBHOOK_URL}        # a secret: masked, never logged
          secret: ${WAFERMON_WEBHOOK_SECRET}  # HMAC-SHA256 over "<timestamp>.<body>"
          headers: {Authorization: "Bearer ${HOOK_TOKEN}"}
      - name: chat
        type: webhook
        config: {url: "${SLACK_WEBHOOK_URL}", preset: slack}   # or teams

The same package provides the alert notifiers ``webhook``, ``slack`` and ``teams``
(``notifier.py``; one POST per notification, the gateway's alert engine retries).

``signing.sign`` / ``signing.verify`` are the signature for anything else that posts or
receives wafermon webhooks (alert notifiers, receivers). docs/backends/webhook.md has the rest.
"""

from .signing import SignatureError, sign, signature_headers, verify

__all__ = ["SignatureError", "sign", "signature_headers", "verify"]
