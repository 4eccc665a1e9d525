from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from cognitive.api.graphql.schema import schema
from cognitive.api.graphql.views import DSPexGraphQLView
from cognitive.api.metrics import MetricsView
from cognitive.health_views import healthz, readyz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("admin/dashboard/", include("cognitive.admin.dashboard_urls")),
    path("admin/", admin.site.urls),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/", include("cognitive.api.urls")),
    path("graphql/", DSPexGraphQLView.as_view(schema=schema), name="graphql"),
]
