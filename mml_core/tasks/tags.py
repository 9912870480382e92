"""MML's task-name algebra: ``task+tag?arg1?arg2+tag2``.

A tag transforms the task description in memory (splits, subsets); the base task file on disk is
never changed. ``duplicate?k`` only makes a repeated name unique.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from mml_core.tasks.description import TaskDescription

TAG_SEP = "+"
ARG_SEP = "?"

TagFunction = Callable[[TaskDescription, list[str]], TaskDescription]


def split_task_name(name: str) -> tuple[str, list[tuple[str, list[str]]]]:
    """``"a+shrink_train?200+identity"`` -> ``("a", [("shrink_train", ["200"]), ("identity", [])])``."""
    base, *raw_tags = name.split(TAG_SEP)
    tags = []
    for raw in raw_tags:
        tag, *args = raw.split(ARG_SEP)
        tags.append((tag, args))
    return base, tags


def join_task_name(base: str, tags: list[tuple[str, list[str]]]) -> str:
    """Inverse of :func:`split_task_name`."""
    return base + "".join(TAG_SEP + ARG_SEP.join([tag, *args]) for tag, args in tags)


def _identity(desc: TaskDescription, args: list[str]) -> TaskDescription:
    return desc


TAGS: dict[str, TagFunction] = {
    "identity": _identity,
    "duplicate": _identity,
}


def check_tags(name: str) -> None:
    """Raise ``ValueError`` if ``name`` uses an unknown tag or whitespace."""
    if any(ch.isspace() for ch in name):
        raise ValueError(
            f"Task name '{name}' contains whitespace. Write tags as task{TAG_SEP}tag{ARG_SEP}arg "
            f"(e.g. sk_digits{TAG_SEP}shrink_train{ARG_SEP}200) without spaces."
        )
    _, tags = split_task_name(name)
    for tag, _ in tags:
        if tag not in TAGS:
            raise ValueError(f"Task '{name}' uses the unknown tag '{tag}'. Known tags: {', '.join(sorted(TAGS))}.")


def apply_tags(desc: TaskDescription, name: str) -> TaskDescription:
    """The description of the tagged task ``name`` built from its base task's ``desc``."""
    check_tags(name)
    _, tags = split_task_name(name)
    result = copy.deepcopy(desc)
    for tag, args in tags:
        result = TAGS[tag](result, args)
    result.name = name
    return result


def deduplicate(task_list: list[str]) -> list[str]:
    """Rename repeated names with ``+duplicate?k`` (k counts from 1), as MML does."""
    seen: dict[str, int] = {}
    renamed = []
    for name in task_list:
        if task_list.count(name) > 1:
            seen[name] = seen.get(name, 0) + 1
            renamed.append(f"{name}{TAG_SEP}duplicate{ARG_SEP}{seen[name]}")
        else:
            renamed.append(name)
    return renamed
