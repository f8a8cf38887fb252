"""wafermon-backend-cloudwatch: CloudWatch Logs, CloudWatch metrics and X-Ray, and reading back.

    backends:
      - name: aws
        type: cloudwatch
        config:
          region: eu-west-1
          log_group: /wafermon/{site_id}     # {site_id} and {app} may appear in both names
          log_stream: "{app}"
          namespace: Wafermon
          dimensions: {Line: L3}           # added to every metric
          xray: true                       # jobs as segments, subjobs as subsegments
    sources:
      - {name: aws, type: cloudwatch, config: {region: eu-west-1}}

Credentials come from the default AWS chain. docs/backends/cloudwatch.md has every setting.
Nothing is imported here, so loading the plugin does not import aiobotocore.
"""
