"""Imported by Celery's autodiscovery: registers every task module."""

from workers import executions, heartbeat, maintenance, optimization

__all__ = ["executions", "heartbeat", "maintenance", "optimization"]
