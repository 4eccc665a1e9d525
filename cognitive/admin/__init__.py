"""The Django admin, one module per concern; importing this package registers every model admin.

`core` registers the resources and jobs; `optimization` replaces the program and version
admins with ones that promote and roll back; `datasets` adds datasets; `runs` adds batches and
lists runs by level; `traces` renders an execution's steps and LM calls; `usage` adds spend
budgets and worker heartbeats; `dashboard` is the operators' page at /admin/dashboard/.
"""

from cognitive.admin import core, datasets, optimization, runs, usage

__all__ = ["core", "datasets", "optimization", "runs", "usage"]
