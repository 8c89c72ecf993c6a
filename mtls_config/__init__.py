"""mtls-config: a ServiceNow instance's outbound mutual-TLS set-up, managed as code."""

__version__ = "0.1.0"
