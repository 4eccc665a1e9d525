"""Beat's scheduler: django-celery-beat's, made to recover its settings' entries after a database outage."""

from __future__ import annotations

import logging
from typing import Any

from django_celery_beat import schedulers

logger = logging.getLogger(__name__)


class DatabaseScheduler(schedulers.DatabaseScheduler):
    """Keeps trying to add the CELERY_BEAT_SCHEDULE entries (the sweepers and reapers) it could not.

    django-celery-beat writes those entries to the database once, at start-up; when the database
    is unreachable then, it logs "Cannot add entry" and never tries again, so beat runs without a
    sweeper or a reaper until someone restarts it. Here each tick retries the ones that failed.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._to_add: dict[str, dict[str, Any]] = {}
        super().__init__(*args, **kwargs)

    def update_from_dict(self, mapping: dict[str, dict[str, Any]]) -> None:
        added = {}
        for name, fields in mapping.items():
            try:
                entry = self.Entry.from_entry(name, app=self.app, **fields)
            except Exception as exc:
                logger.warning("cannot add beat entry %r yet (%s); will retry", name, exc)
                self._to_add[name] = fields
                continue
            self._to_add.pop(name, None)
            if entry.model.enabled:
                added[name] = entry
        if added:
            self.schedule.update(added)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if self._to_add:
            self.update_from_dict(dict(self._to_add))
        return super().tick(*args, **kwargs)
