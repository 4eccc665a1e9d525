"""What operators see: Prometheus metrics, OpenTelemetry spans, job-aware logs, Sentry (docs/observability.md).

The job core and the traced LM are the one place that records what happened; these modules
turn those records into metrics and spans. Nothing here is imported by the engine: the engine
calls hooks that `cognitive.apps` registers at startup.
"""
