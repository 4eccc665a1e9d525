from django.urls import include, path
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import DefaultRouter

from cognitive.api import views
from cognitive.api.batches import BatchViewSet
from cognitive.api.datasets import DatasetViewSet, ExecutionFeedbackView
from cognitive.api.retrieval import CorpusViewSet

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

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("executions/<uuid:pk>/feedback/", ExecutionFeedbackView.as_view(), name="execution-feedback"),
    path("", include(router.urls)),
]
