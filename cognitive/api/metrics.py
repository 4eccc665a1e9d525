"""`/metrics` in the Prometheus text format, for staff tokens (Prometheus sends `Authorization: Token …`)."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.views import APIView

from cognitive.telemetry.exposition import scrape


class MetricsView(APIView):
    permission_classes = [IsAdminUser]
    throttle_classes: list[type] = []

    @extend_schema(exclude=True)
    def get(self, request: Request) -> HttpResponse:
        from django.conf import settings

        if not settings.DSPEX_METRICS_URL:
            raise Http404("metrics are served by `manage.py metrics_server`")
        return HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)
