"""The Django admin, one module per concern; importing this package registers every model admin.

`core` registers the resources and jobs; `optimization` replaces the program and version
admins with ones that promote and roll back; `datasets` adds datasets; `runs` adds batches and
lists runs by level; `traces` renders an execution's steps and LM calls.
"""

from cognitive.admin import core, datasets, optimization, runs

__all__ = ["core", "datasets", "optimization", "runs"]
