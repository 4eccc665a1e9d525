"""Imported by Celery's autodiscovery: registers every task module."""

from workers import executions, maintenance, optimization, prometheus

__all__ = ["executions", "maintenance", "optimization", "prometheus"]
