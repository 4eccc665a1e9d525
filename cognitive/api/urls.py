from django.urls import include, path
from rest_framework.routers import DefaultRouter

from cognitive.api import views
from cognitive.api.auth import TokenView
from cognitive.api.batches import BatchViewSet
from cognitive.api.datasets import DatasetViewSet, ExecutionFeedbackView
from cognitive.api.optimization import (
    OptimizationRunViewSet,
    ProgramOptimizeView,
    ProgramPromoteView,
    ProgramRollbackView,
    ProgramScheduleView,
)
from cognitive.api.retrieval import CorpusViewSet
from cognitive.api.stats import (
    BudgetViewSet,
    LanguageModelStatsView,
    ModuleStatsView,
    ProgramStatsView,
    UserStatsView,
    VersionStatsView,
)

router = DefaultRouter()
router.register("signatures", views.SignatureViewSet, basename="signature")
router.register("lms", views.LanguageModelViewSet, basename="lm")
router.register("modules", views.ModuleViewSet, basename="module")
router.register("programs", views.ProgramViewSet, basename="program")
router.register("program-versions", views.ProgramVersionViewSet, basename="program-version")
router.register("optimizers", views.OptimizerViewSet, basename="optimizer")
router.register("executions", views.ExecutionViewSet, basename="execution")
router.register("batches", BatchViewSet, basename="batch")
router.register("corpora", CorpusViewSet, basename="corpus")
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("optimization-runs", OptimizationRunViewSet, basename="optimization-run")
router.register("budgets", BudgetViewSet, basename="budget")

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="api-token"),
    path("executions/<uuid:pk>/feedback/", ExecutionFeedbackView.as_view(), name="execution-feedback"),
    path("programs/<uuid:pk>/optimize/", ProgramOptimizeView.as_view(), name="program-optimize"),
    path("programs/<uuid:pk>/promote/", ProgramPromoteView.as_view(), name="program-promote"),
    path("programs/<uuid:pk>/rollback/", ProgramRollbackView.as_view(), name="program-rollback"),
    path("programs/<uuid:pk>/schedule/", ProgramScheduleView.as_view(), name="program-schedule"),
    path("programs/<uuid:pk>/stats/", ProgramStatsView.as_view(), name="program-stats"),
    path("program-versions/<uuid:pk>/stats/", VersionStatsView.as_view(), name="program-version-stats"),
    path("modules/<uuid:pk>/stats/", ModuleStatsView.as_view(), name="module-stats"),
    path("lms/<uuid:pk>/stats/", LanguageModelStatsView.as_view(), name="lm-stats"),
    path("stats/", UserStatsView.as_view(), name="user-stats"),
    path("", include(router.urls)),
]
