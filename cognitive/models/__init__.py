from cognitive.models.batch import Batch
from cognitive.models.dataset import Dataset, Example, ExampleSource, ExampleSplit
from cognitive.models.execution import FINAL_STATUSES, Execution, ExecutionStatus
from cognitive.models.lm import LanguageModel
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
from cognitive.models.usage import RollupScope, SpendBudget, UsageRollup, WorkerHeartbeat

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
    "ImmutableRowError",
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
    "WorkerHeartbeat",
]
