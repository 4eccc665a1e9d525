"""Imported by Celery's autodiscovery: registers every task module."""

from workers import executions, maintenance

__all__ = ["executions", "maintenance"]
