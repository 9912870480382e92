"""Tasks: MML's task files and data roots, ``TaskStruct``/``TaskStructFactory``, tags, demo tasks
and importers (``python -m mml_core.tasks``).

Importable without torch: the planner uses it to resolve task names and fold counts.
"""

from mml_core.tasks.description import TaskDescription, TaskFileError, read_task_file, write_task_file
from mml_core.tasks.struct import TaskNotFoundError, TaskStruct, TaskStructFactory
from mml_core.tasks.tags import ARG_SEP, TAG_SEP, TagError, apply_tags, deduplicate, split_task_name

__all__ = [
    "ARG_SEP",
    "TAG_SEP",
    "TagError",
    "TaskDescription",
    "TaskFileError",
    "TaskNotFoundError",
    "TaskStruct",
    "TaskStructFactory",
    "apply_tags",
    "deduplicate",
    "read_task_file",
    "split_task_name",
    "write_task_file",
]
