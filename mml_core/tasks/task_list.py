"""An experiment's task list after MML's tagging rules (``tagging.all``, ``tagging.variants``, pivot tags).

Pure: takes the configured names and returns the expanded list, so every job that rebuilds the
scheduler from the same config derives the same tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mml_core.tasks.tags import TAG_SEP, TagError, deduplicate

logger = logging.getLogger(__name__)


def expand_task_list(
    task_list: Sequence[str],
    tag_all: str | None,
    variants: Sequence[str],
    pivot: str | None,
    pivot_tags: str | None,
) -> tuple[list[str], str | None]:
    """``(tasks, pivot)`` as MML builds them: ``tag_all`` appended to every task, one copy of the list
    per variant (``+identity`` keeps the originals), repeated names made unique (``+duplicate?k``),
    and the pivot (with ``pivot_tags``) put in place of its untagged name or appended.

    :raises TagError: a tag string that does not start with ``+``
    """
    tasks = list(task_list)
    if tag_all:
        if not tag_all.startswith(TAG_SEP):
            raise TagError(f'tagging.all="{tag_all}" must start with "{TAG_SEP}".')
        tasks = [task + tag_all for task in tasks]
    if variants:
        expanded = []
        for variant in variants:
            if not variant.startswith(TAG_SEP):
                raise TagError(f'tagging.variants entry "{variant}" must start with "{TAG_SEP}".')
            expanded += tasks if variant == f"{TAG_SEP}identity" else [t + variant for t in tasks]
        tasks = expanded
    tasks = deduplicate(tasks)
    if not pivot:
        return tasks, None
    tagged = (pivot + (pivot_tags or "")).strip()
    if pivot in tasks:
        tasks[tasks.index(pivot)] = tagged
    elif tagged not in tasks:
        tasks.append(tagged)
        logger.info("Added pivot task %s to task_list.", tagged)
    return tasks, tagged
