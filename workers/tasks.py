"""Imported by Celery's autodiscovery: registers every task module."""

from workers import executions, maintenance, optimization

__all__ = ["executions", "maintenance", "optimization"]
