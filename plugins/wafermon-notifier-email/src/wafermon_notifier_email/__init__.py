"""wafermon-notifier-email: alerts as e-mail over SMTP, a text and an HTML part per alert.

    notifiers:
      - name: oncall-mail
        type: email
        config:
          host: smtp.example.org
          port: 587
          start_tls: true                 # required: say whether to upgrade with STARTTLS
          username: wafermon
          password: ${SMTP_PASSWORD}      # a secret: masked, never logged
          sender: "wafermon <alerts@example.org>"
          to: [oncall@example.org]

One ``notify`` is one SMTP session; the gateway's alert engine retries. docs/notifiers.md
has every setting.
"""
