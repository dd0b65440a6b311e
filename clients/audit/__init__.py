"""The auditor's tools: verify the transparency log, reconcile it with the key server, report.

``sealpost audit verify|reconcile|report`` (clients/audit/cli.py). The checks
themselves are pure: sealpost.crypto.logaudit (the log) and
sealpost.clients.audit.reconcile (grants against decrypts); the rest reads the
gateway's database read only and renders the results. docs/audit.md.
"""
