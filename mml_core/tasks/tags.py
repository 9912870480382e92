"""MML's task-name algebra: ``task+tag?arg1?arg2+tag2``.

A tag transforms the task description in memory; the base task file on disk is never changed
(MML writes each tagged task as a file of its own; here it is derived whenever it is needed, which
gives the same result in every job because tags never use the experiment seed). Tag functions are
pure: they build new containers and share, never modify, the base description's sample dicts.

Tags, as in MML:

- ``identity`` (any arguments, ignored): a distinct copy of the task, e.g. to train it twice.
- ``duplicate?k``: added automatically to repeated names in ``task_list``; changes nothing else.
- ``nested?fold[?new_folds]``: fold ``fold`` becomes the test split (the old test split is
  dropped); the other folds are re-split into ``new_folds`` (default 5) stratified folds.
- ``shrink_train?n[?seed]``: fold 0 (the validation fold) stays whole; folds 1.. are shrunk,
  stratified by class, to ``n`` samples in total (default seed 42). With ``mode.cv`` the other
  folds become validation folds in turn, so only fold 0's model trains on exactly ``n`` samples.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from mml_core.tasks.description import TaskDescription, count_classes
from mml_core.tasks.splits import make_folds

TAG_SEP = "+"
ARG_SEP = "?"
# MML's TaskCreator.split_folds default seed, used by nested; fixed so that every job agrees
NESTED_SEED = 42
_INT = re.compile(r"-?[0-9]+")


class TagError(ValueError):
    """A tag of a task name is unknown or has bad arguments; the message names the task and the fix."""


def split_task_name(name: str) -> tuple[str, list[tuple[str, list[str]]]]:
    """``"a+shrink_train?200+identity"`` -> ``("a", [("shrink_train", ["200"]), ("identity", [])])``."""
    base, *raw_tags = name.split(TAG_SEP)
    tags = []
    for raw in raw_tags:
        tag, *args = raw.split(ARG_SEP)
        tags.append((tag, args))
    return base, tags


def _keep_folds(n_folds: int, args: list[int]) -> int:
    return n_folds


def _identity(desc: TaskDescription, args: list[int]) -> TaskDescription:
    return desc


def _nested_folds(n_folds: int, args: list[int]) -> int:
    fold, new_folds = args
    if not 0 <= fold < n_folds:
        raise TagError(
            f"nested{ARG_SEP}{fold}: the task has {n_folds} folds; choose a fold in 0..{n_folds - 1}."
        )
    if new_folds < 2:
        raise TagError(
            f"nested needs at least 2 new folds, got {new_folds}; write nested{ARG_SEP}{fold}{ARG_SEP}5."
        )
    return new_folds


def _labels(desc: TaskDescription, ids: list[str]) -> list[int]:
    return [desc.train_samples[i]["class"] for i in ids]


def _nested(desc: TaskDescription, args: list[int]) -> TaskDescription:
    new_folds = _nested_folds(len(desc.train_folds), args)
    fold = args[0]
    train_ids = [i for k, ids in enumerate(desc.train_folds) if k != fold for i in ids]
    labels = _labels(desc, train_ids) if desc.task_type == "classification" else None
    try:
        folds = make_folds(train_ids, labels, new_folds, NESTED_SEED)
    except ValueError as exc:
        raise TagError(
            f"cannot split the remaining {len(train_ids)} samples into {new_folds} folds ({exc}); "
            f"choose fewer new folds (nested{ARG_SEP}{fold}{ARG_SEP}<new_folds>)."
        ) from None
    return dataclasses.replace(
        desc,
        train_samples={i: desc.train_samples[i] for i in train_ids},
        test_samples={i: desc.train_samples[i] for i in desc.train_folds[fold]},
        train_folds=folds,
        class_occ=count_classes(desc.idx_to_class, labels) if labels is not None else {},
    )


def _fold_sizes(n: int, lengths: list[int]) -> list[int]:
    """Split ``n`` over folds in proportion to their ``lengths`` (largest remainders round up)."""
    total = sum(lengths)
    exact = [n * length / total for length in lengths]
    sizes = [int(x) for x in exact]
    by_remainder = sorted(range(len(lengths)), key=lambda k: sizes[k] - exact[k])
    for k in by_remainder[: n - sum(sizes)]:
        sizes[k] += 1
    return sizes


def _shrink_train(desc: TaskDescription, args: list[int]) -> TaskDescription:
    from sklearn.utils import resample

    n, seed = args
    if desc.task_type != "classification":
        raise TagError(
            f"shrink_train supports classification tasks only (as in MML); this is {desc.task_type}."
        )
    folds = desc.train_folds
    if len(folds) < 2:
        raise TagError(
            f"shrink_train needs at least 2 folds (fold 0 stays whole), the task has {len(folds)}; "
            "recreate it with more folds."
        )
    lengths = [len(f) for f in folds[1:]]
    if not len(lengths) <= n <= sum(lengths):
        raise TagError(
            f"shrink_train{ARG_SEP}{n}: n counts the training samples outside fold 0 (which stays whole for "
            f"validation, as in MML) and must lie in {len(lengths)}..{sum(lengths)} for this task "
            f"({len(folds)} folds); choose n in that range."
        )
    sizes = _fold_sizes(n, lengths)
    if 0 in sizes:
        raise TagError(f"shrink_train{ARG_SEP}{n} leaves fold {sizes.index(0) + 1} empty; choose a larger n.")
    new_folds = [list(folds[0])]
    for k, (ids, size) in enumerate(zip(folds[1:], sizes), start=1):
        kept = set(
            resample(ids, replace=False, n_samples=size, stratify=_labels(desc, ids), random_state=seed + k)
        )
        new_folds.append([i for i in ids if i in kept])
    dropped = {i for ids in folds for i in ids} - {i for ids in new_folds for i in ids}
    return dataclasses.replace(
        desc,
        train_samples={i: s for i, s in desc.train_samples.items() if i not in dropped},
        train_folds=new_folds,
        # as in MML: occurrences of the shrunk training folds, without the validation fold 0
        class_occ=count_classes(desc.idx_to_class, _labels(desc, [i for ids in new_folds[1:] for i in ids])),
    )


@dataclasses.dataclass(frozen=True)
class Tag:
    """A tag: its transformation, its effect on the fold count and the integer arguments it takes."""

    usage: str
    transform: Callable[[TaskDescription, list[int]], TaskDescription]
    required: int = 0
    defaults: tuple[int, ...] = ()
    ignores_args: bool = False
    folds: Callable[[int, list[int]], int] = _keep_folds

    def parse(self, args: list[str]) -> list[int]:
        """The integer arguments (defaults filled in); ``TagError`` names the usage."""
        if self.ignores_args:
            return []
        most = self.required + len(self.defaults)
        if not self.required <= len(args) <= most:
            count = f"{self.required}" if most == self.required else f"{self.required}..{most}"
            raise TagError(f"takes {count} argument(s) ({self.usage}), got {len(args)}")
        if not all(_INT.fullmatch(a) for a in args):
            raise TagError(f"needs integer arguments ({self.usage}), got {ARG_SEP.join(args)!r}")
        values = [int(a) for a in args]
        return values + list(self.defaults[len(values) - self.required :])


TAGS: dict[str, Tag] = {
    "identity": Tag("identity[?anything]", _identity, ignores_args=True),
    "duplicate": Tag(f"duplicate{ARG_SEP}<k>", _identity, required=1),
    "nested": Tag(f"nested{ARG_SEP}<fold>[{ARG_SEP}<new_folds=5>]", _nested, 1, (5,), folds=_nested_folds),
    "shrink_train": Tag(f"shrink_train{ARG_SEP}<n>[{ARG_SEP}<seed=42>]", _shrink_train, 1, (42,)),
}


def _parse(name: str) -> list[tuple[Tag, list[int]]]:
    if any(ch.isspace() for ch in name):
        raise TagError(
            f"Task name '{name}' contains whitespace. Write tags as task{TAG_SEP}tag{ARG_SEP}arg "
            f"(e.g. sk_digits{TAG_SEP}shrink_train{ARG_SEP}200) without spaces."
        )
    parsed = []
    for tag, args in split_task_name(name)[1]:
        if tag not in TAGS:
            raise TagError(
                f"Task '{name}' uses the unknown tag '{tag}'. Known tags: {', '.join(sorted(TAGS))}."
            )
        try:
            parsed.append((TAGS[tag], TAGS[tag].parse(args)))
        except TagError as exc:
            raise TagError(f"Task '{name}': tag '{tag}' {exc}.") from None
    return parsed


def check_tags(name: str) -> None:
    """Raise :class:`TagError` if ``name`` has whitespace, an unknown tag or malformed tag arguments."""
    _parse(name)


def num_folds_after_tags(name: str, n_folds: int) -> int:
    """Fold count of the tagged task ``name`` whose base task has ``n_folds`` folds (no data needed)."""
    for tag, args in _parse(name):
        try:
            n_folds = tag.folds(n_folds, args)
        except TagError as exc:
            raise TagError(f"Task '{name}': {exc}") from None
    return n_folds


def apply_tags(desc: TaskDescription, name: str) -> TaskDescription:
    """The description of the tagged task ``name`` built from its base task's ``desc`` (left unchanged)."""
    result = desc
    for tag, args in _parse(name):
        try:
            result = tag.transform(result, args)
        except TagError as exc:
            raise TagError(f"Task '{name}': {exc}") from None
    return dataclasses.replace(result, name=name)


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
