"""``TaskStruct`` (a task's metadata, as in MML) and ``TaskStructFactory`` (creates, dumps, reloads)."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mml_core.io import atomic_write_json
from mml_core.tasks import demo
from mml_core.tasks.description import TaskDescription, read_task_file
from mml_core.tasks.index import scan_task_files
from mml_core.tasks.tags import apply_tags, check_tags, split_task_name

logger = logging.getLogger(__name__)


class TaskNotFoundError(LookupError):
    """A task name matches no task file in data_dir and no demo task."""


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

    Task files are found by scanning the data root. Demo tasks that are not written yet are
    known by name (the ``demo_tasks`` rule writes them before any step reads them).
    """

    def __init__(self, data_dir: str | Path):
        self.data_dir = Path(data_dir)
        self.container: list[TaskStruct] = []
        self._index: dict[str, Path] | None = None
        self._descriptions: dict[str, TaskDescription] = {}

    @property
    def index(self) -> dict[str, Path]:
        if self._index is None:
            self._index = scan_task_files(self.data_dir)
        return self._index

    def task_file(self, name: str) -> Path:
        """Task file of the base task of ``name``; demo tasks resolve even before they are written."""
        base, _ = split_task_name(name)
        if base in self.index:
            return self.index[base]
        if base in demo.DEMO_TASKS:
            return demo.demo_task_files(self.data_dir)[base]
        available = sorted(set(self.index) | set(demo.DEMO_TASKS))
        if not self.data_dir.exists():
            hint = f"data_dir '{self.data_dir}' does not exist (relative paths start in the working directory)"
        else:
            hint = f"no RAW/DSET_*/TASK_{base}.json under data_dir '{self.data_dir}'"
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
        """Number of cross-validation folds of ``name`` (readable before demo data exists)."""
        base, tags = split_task_name(name)
        check_tags(name)
        path = self.task_file(name)
        if not path.exists() and base in demo.DEMO_TASKS and not tags:
            return demo.N_FOLDS
        return len(self.load_description(name).train_folds)

    def load_description(self, name: str) -> TaskDescription:
        """The (tagged) task description of ``name``; base files are parsed once per factory."""
        base, _ = split_task_name(name)
        if base not in self._descriptions:
            self._descriptions[base] = read_task_file(self.task_file(name))
        return apply_tags(self._descriptions[base], name)

    def create_task_struct(self, name: str, return_ref: bool = False) -> TaskStruct | None:
        """Create the struct of ``name`` and add it to the container (MML's signature)."""
        if self.check_exists(name):
            logger.warning("Task struct %s already present in the factory container.", name)
            return self.get_by_name(name) if return_ref else None
        desc = self.load_description(name)
        task_file = self.task_file(name)
        struct = TaskStruct(
            name=name,
            task_type=desc.task_type,
            means=desc.means,
            stds=desc.stds,
            sizes=desc.sizes,
            class_occ=desc.class_occ,
            keywords=list(desc.keywords),
            idx_to_class=dict(desc.idx_to_class),
            modalities=dict(desc.modalities),
            num_samples=desc.num_samples,
            paths={"task_file": task_file, "dataset_root": task_file.parent},
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

    def load_dump(self, path: Path) -> None:
        """Restore structs written by :meth:`dump` (replaces the container)."""
        with open(path) as fh:
            data = json.load(fh)
        self.container = [TaskStruct.from_json(v) for v in data.values()]

