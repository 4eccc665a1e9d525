"""Beat's scheduler recovers the sweeper and reaper entries it could not add while the database was down."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import OperationalError
from django_celery_beat.models import PeriodicTask

from dspex_site.celery import app
from workers.scheduler import DatabaseScheduler

# django-celery-beat closes connections that are not in autocommit mode, as a test transaction is not.
pytestmark = pytest.mark.django_db(transaction=True)


def test_entries_that_could_not_be_added_at_start_up_are_added_on_a_later_tick():
    real_from_entry = DatabaseScheduler.Entry.from_entry.__func__
    down = {"yes": True}

    def from_entry(cls, name, **kwargs):
        if down["yes"]:
            raise OperationalError("the database system is shutting down")
        return real_from_entry(cls, name, **kwargs)

    with mock.patch.object(DatabaseScheduler.Entry, "from_entry", classmethod(from_entry)):
        scheduler = DatabaseScheduler(app=app, lazy=False)
        assert not PeriodicTask.objects.filter(name__in=app.conf.beat_schedule).exists()

        down["yes"] = False  # the database is back
        with mock.patch("celery.beat.Scheduler.tick", return_value=1.0):
            scheduler.tick()

    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert set(app.conf.beat_schedule) <= names
    assert {"sweep-executions", "reap-executions", "sweep-optimizations", "reap-optimizations"} <= names
    assert scheduler._to_add == {}
