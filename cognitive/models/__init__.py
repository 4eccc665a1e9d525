from cognitive.models.batch import Batch
from cognitive.models.dataset import Dataset, Example, ExampleSource, ExampleSplit
from cognitive.models.execution import FINAL_STATUSES, Execution, ExecutionStatus
from cognitive.models.heartbeat import Heartbeat, HeartbeatKind
from cognitive.models.idempotency import IdempotentRequest
from cognitive.models.lm import LanguageModel, LMAvailability
from cognitive.models.module import Module, ModuleState, ModuleType
from cognitive.models.optimization import Optimizer, OptimizerType
from cognitive.models.optimization_run import (
    ActiveVersionChange,
    OptimizationRun,
    OptimizationRunStatus,
    OptimizationSchedule,
    VersionChangeKind,
)
from cognitive.models.program import (
    ImmutableRowError,
    Program,
    ProgramStatus,
    ProgramVersion,
    VersionSource,
)
from cognitive.models.retrieval import Corpus, Document
from cognitive.models.signature import Signature
from cognitive.models.usage import RollupScope, SpendBudget, UsageRollup

__all__ = [
    "FINAL_STATUSES",
    "ActiveVersionChange",
    "Batch",
    "Corpus",
    "Dataset",
    "Document",
    "Example",
    "ExampleSource",
    "ExampleSplit",
    "Execution",
    "ExecutionStatus",
    "Heartbeat",
    "HeartbeatKind",
    "IdempotentRequest",
    "ImmutableRowError",
    "LMAvailability",
    "LanguageModel",
    "Module",
    "ModuleState",
    "ModuleType",
    "OptimizationRun",
    "OptimizationRunStatus",
    "OptimizationSchedule",
    "Optimizer",
    "OptimizerType",
    "Program",
    "ProgramStatus",
    "ProgramVersion",
    "RollupScope",
    "Signature",
    "SpendBudget",
    "UsageRollup",
    "VersionChangeKind",
    "VersionSource",
]
