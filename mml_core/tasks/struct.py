"""``TaskStruct`` (a task's metadata, as in MML) and ``TaskStructFactory`` (creates and dumps them)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mml_core.io import atomic_write_json
from mml_core.tasks import demo
from mml_core.tasks.description import TaskDescription, read_task_file
from mml_core.tasks.index import NO_PREPROCESSING, PREPROCESSED, RAW, scan_task_files
from mml_core.tasks.tags import apply_tags, num_folds_after_tags, split_task_name

logger = logging.getLogger(__name__)


class TaskNotFoundError(LookupError):
    """A task name matches no task file in data_dir (in the requested preprocessing) and no demo task."""


@dataclasses.dataclass
class TaskStruct:
    """Meta information of one (possibly tagged) task: what models and datamodules are built from."""

    name: str
    task_type: str
    means: dict[str, float]
    stds: dict[str, float]
    sizes: dict[str, int]
    class_occ: dict[str, int]
    keywords: list[str]
    idx_to_class: dict[int, str]
    modalities: dict[str, str]
    num_samples: int
    # task_file: the base task's JSON; dataset_root: folder that sample paths are relative to
    paths: dict[str, Path] = dataclasses.field(default_factory=dict)
    # MML: the preprocessing id the task was loaded in ("none": RAW) and its task file below data_dir
    preprocessed: str = NO_PREPROCESSING
    relative_root: str = ""

    @property
    def num_classes(self) -> int:
        return len(set(self.idx_to_class.values()))

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["idx_to_class"] = {str(k): v for k, v in self.idx_to_class.items()}
        data["paths"] = {k: str(v) for k, v in self.paths.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskStruct:
        data = dict(data)
        data["idx_to_class"] = {int(k): v for k, v in data["idx_to_class"].items()}
        data["paths"] = {k: Path(v) for k, v in data.get("paths", {}).items()}
        return cls(**data)


class TaskStructFactory:
    """Creates the task structs of an experiment from the task files under ``data_dir``.

    Task files are found by scanning the data root. ``preprocessing`` picks the version, as MML's
    ``preprocessing.id``: ``none`` reads ``RAW/``, any other id ``PREPROCESSED/<id>/``; with
    ``raw_fallback`` (a preprocessing pipeline to apply on the fly) a task without that version is
    read from ``RAW/`` (its struct then says ``preprocessed="none"``). Demo tasks that are not
    written yet are known by name (the ``demo_tasks`` rule writes them to ``RAW/`` before any step
    reads them).
    """

    def __init__(self, data_dir: str | Path, preprocessing: str = NO_PREPROCESSING, raw_fallback: bool = False):
        self.data_dir = Path(data_dir)
        self.preprocessing = preprocessing
        self.raw_fallback = raw_fallback
        self.container: list[TaskStruct] = []
        self._index: dict[str, dict[str, Path]] | None = None
        self._descriptions: dict[str, TaskDescription] = {}

    @property
    def index(self) -> dict[str, dict[str, Path]]:
        """Task name -> {preprocessing id: task file}, scanned once per factory."""
        if self._index is None:
            self._index = scan_task_files(self.data_dir)
        return self._index

    def task_file(self, name: str) -> Path:
        """Task file of the base task of ``name``; demo tasks resolve even before they are written."""
        return self.version(name)[1]

    def raw_file(self, name: str) -> Path | None:
        """The RAW task file of ``name``'s base task (demo tasks too, before they are written), if any."""
        base, _ = split_task_name(name)
        if base in demo.DEMO_TASKS:
            return demo.demo_task_files(self.data_dir)[base]
        return self.index.get(base, {}).get(NO_PREPROCESSING)

    def version(self, name: str) -> tuple[str, Path]:
        """``(preprocessing id, task file)`` that ``name`` is read from (see the class docstring)."""
        base, _ = split_task_name(name)
        versions = dict(self.index.get(base, {}))
        if base in demo.DEMO_TASKS:
            versions.setdefault(NO_PREPROCESSING, demo.demo_task_files(self.data_dir)[base])
        if self.preprocessing in versions:
            return self.preprocessing, versions[self.preprocessing]
        if self.raw_fallback and NO_PREPROCESSING in versions:
            return NO_PREPROCESSING, versions[NO_PREPROCESSING]
        if versions:
            where = {p: (RAW if p == NO_PREPROCESSING else f"{PREPROCESSED}/{p}") for p in sorted(versions)}
            raise TaskNotFoundError(
                f"Task '{base}' has no version with preprocessing '{self.preprocessing}' (no "
                f"{PREPROCESSED}/{self.preprocessing}/DSET_*/TASK_{base}.json under data_dir "
                f"'{self.data_dir}'); "
                f"it exists as {', '.join(f'{p} ({w})' for p, w in where.items())}. Set preprocessing to one "
                f"of {', '.join(where)}, give preprocessing.pipeline to preprocess it on the fly, or preprocess it "
                "once (snakemake pp, or MML's mml pp)."
            )
        available = sorted(set(self.index) | set(demo.DEMO_TASKS))
        if not self.data_dir.exists():
            hint = (
                f"data_dir '{self.data_dir}' does not exist (relative paths start in the working directory)"
            )
        else:
            hint = (
                f"no {RAW}/DSET_*/TASK_{base}.json or {PREPROCESSED}/*/DSET_*/TASK_{base}.json "
                f"under data_dir '{self.data_dir}'"
            )
        raise TaskNotFoundError(
            f"Unknown task '{base}': {hint}. Available tasks: {', '.join(available)}. "
            "Fix task_list / pivot.name, point data_dir at your MML data root, "
            "or import data with python -m mml_core.tasks."
        )

    def missing_demo_files(self, names: Iterable[str]) -> list[Path]:
        """Task files of demo tasks among ``names`` that are not on disk yet."""
        files = {self.task_file(n) for n in names if split_task_name(n)[0] in demo.DEMO_TASKS}
        return sorted(f for f in files if not f.exists())

    def num_folds(self, name: str) -> int:
        """Number of cross-validation folds of ``name`` after its tags (readable before demo data exists)."""
        base, _ = split_task_name(name)
        path = self.task_file(name)
        if not path.exists() and base in demo.DEMO_TASKS:
            base_folds = demo.N_FOLDS
        else:
            base_folds = len(self._base_description(name).train_folds)
        return num_folds_after_tags(name, base_folds)

    def task_type(self, name: str) -> str:
        """MML's task type of ``name`` (readable before demo data exists)."""
        base, _ = split_task_name(name)
        if not self.task_file(name).exists() and base in demo.DEMO_TASKS:
            return demo.DEMO_TASKS[base]
        return self._base_description(name).task_type

    def _base_description(self, name: str) -> TaskDescription:
        base, _ = split_task_name(name)
        if base not in self._descriptions:
            self._descriptions[base] = read_task_file(self.task_file(name))
        return self._descriptions[base]

    def load_description(self, name: str) -> TaskDescription:
        """The (tagged) task description of ``name``; base files are parsed once per factory.

        Descriptions share the cached base task's samples: treat them as read-only.
        """
        return apply_tags(self._base_description(name), name)

    def create_task_struct(self, name: str, return_ref: bool = False) -> TaskStruct | None:
        """Create the struct of ``name`` and add it to the container (MML's signature)."""
        if self.check_exists(name):
            logger.warning("Task struct %s already present in the factory container.", name)
            return self.get_by_name(name) if return_ref else None
        desc = self.load_description(name)
        version, task_file = self.version(name)
        struct = TaskStruct(
            name=name,
            task_type=desc.task_type,
            means=dict(desc.means),
            stds=dict(desc.stds),
            sizes=dict(desc.sizes),
            class_occ=dict(desc.class_occ),
            keywords=list(desc.keywords),
            idx_to_class=dict(desc.idx_to_class),
            modalities=dict(desc.modalities),
            num_samples=desc.num_samples,
            paths={"task_file": task_file, "dataset_root": task_file.parent},
            preprocessed=version,
            relative_root=str(task_file.relative_to(self.data_dir)),
        )
        self.container.append(struct)
        return struct if return_ref else None

    def check_exists(self, name: str) -> bool:
        return any(s.name == name for s in self.container)

    def get_by_name(self, name: str) -> TaskStruct:
        """The struct called ``name``; created on first access."""
        for struct in self.container:
            if struct.name == name:
                return struct
        created = self.create_task_struct(name, return_ref=True)
        assert created is not None
        return created

    def dump(self, path: Path) -> None:
        """Write all structs to ``path`` (JSON) so later steps and people can inspect them."""
        atomic_write_json(path, {s.name: s.to_json() for s in self.container})
