"""Observability plumbing shared by the runner, serving and the control plane:
OpenTelemetry traces (`tracing`) and JSON log lines (`logs`).

The OpenTelemetry SDK is imported only when tracing is configured, so a process with
tracing off pays nothing for it.
"""
