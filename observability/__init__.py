"""Metrics (``metrics``: Prometheus), traces (``tracing``: OpenTelemetry, W3C trace context) and log
configuration (``logs``: structlog), installed as ``lattice.observability``.

Above the contract (``lattice``), below everything that runs: host, providers, control plane and CLI use it.
"""
