"""``AbstractBaseScheduler``: MML's scheduler API, with Snakemake running the schedule.

Subclasses write ``create_routine`` exactly as in MML (append bound methods to ``self.commands``
and their arguments to ``self.params``). Each (command, params) pair becomes a *step* with a
stable name (``command--param1_param2``) and a file target ``results/<proj>/steps/<name>/metrics.json``;
``mml_core.schedulers.plan`` turns the schedule into Snakemake rules and each Snakemake job
rebuilds the scheduler and runs one step (``mml_core.schedulers.runner``).

Planning never imports torch: the factories (``create_datamodule``, ``create_model``,
``create_trainer``, ``lightning_tune``) import it inside the function.
"""

from __future__ import annotations

import abc
import functools
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from mml_core.config import ConfigError, config_hash, select
from mml_core.io import atomic_write_json, atomic_write_text
from mml_core.results.outputs import write_summary_outputs
from mml_core.tasks import TAG_SEP, TaskStruct, TaskStructFactory, deduplicate
from mml_core.tasks.description import check_files_exist
from mml_core.tasks.tags import check_tags

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from mml_core.data.datamodule import MultiTaskDataModule

logger = logging.getLogger(__name__)

# config keys that never change a step's results (kept out of the default params slice)
NON_RESULT_KEYS = ("proj", "logging", "resources")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+?=,@-]")


class MisconfigurationError(ConfigError):
    """The config asks for something the scheduler cannot do; the message says what to change."""


def reads_config(*keys: str) -> Callable[[Callable], Callable]:
    """Declare the (dotted) config keys a command reads.

    The keys become the step's Snakemake ``params``, so changing one of them reruns exactly the
    steps that read it (and, through their outputs, what depends on them). Commands without the
    decorator are assumed to read the whole config except ``proj``, ``logging`` and ``resources``.
    """

    def mark(command: Callable) -> Callable:
        command.config_keys = tuple(keys)
        return command

    return mark


def step_name(command: str, params: Sequence[Any]) -> str:
    """``command--p1_p2`` (``command`` alone without params); unsafe path characters become ``-``."""
    if not params:
        return command
    return _UNSAFE.sub("-", f"{command}--{'_'.join(str(p) for p in params)}")


def stale_results_message(stale: Sequence[tuple[str, str]], results_dir: Path) -> str:
    """The message for step results (command, step) computed under another config than the current one."""
    rules = sorted({command for command, _ in stale})
    return (
        f"{len(stale)} step result(s) in {results_dir} were computed under a different config than the "
        f"current one (e.g. {stale[0][1]}); Snakemake does not rerun them because its records in .snakemake/ do "
        f"not know their config. Rerun them with `snakemake --cores N --forcerun {' '.join(rules)}`, or use "
        "another proj (--config proj=...) to keep both studies."
    )


class AbstractBaseScheduler(metaclass=abc.ABCMeta):
    """Base class of a series of experiments; see the module docstring for the Snakemake mapping."""

    def __init__(self, cfg: DictConfig, available_subroutines: list[str]):
        """Creates the schedule. Run it with ``snakemake`` or :meth:`run`.

        :param cfg: configs of the current run (validated, see :mod:`mml_core.config`)
        :param available_subroutines: subroutines the inheriting scheduler implements
        """
        # the config as validated, before tagging and create_routine change it: jobs rebuild from it
        self.validated_config = OmegaConf.to_container(cfg, resolve=True)
        self.cfg = cfg
        subroutines = cfg.mode.subroutines
        if not OmegaConf.is_list(subroutines) and not isinstance(subroutines, list):
            raise MisconfigurationError(
                f"mode.subroutines must be a list, e.g. [train, test]; got {type(subroutines).__name__}."
            )
        subroutines = list(subroutines)
        if not subroutines:
            raise MisconfigurationError(
                f"mode.subroutines is empty. Choose one or more of {available_subroutines}."
            )
        unknown = [s for s in subroutines if s not in available_subroutines]
        if unknown:
            raise MisconfigurationError(
                f"Unknown subroutine(s) {unknown} for {type(self).__name__}. "
                f"Allowed subroutines: {available_subroutines}."
            )
        self.subroutines = subroutines
        # updated to the current step before each command runs; names checkpoints and logs
        self.active_step_naming = "init"
        # returned by run(); set in before_finishing_hook for black-box optimisation
        self.return_value: float | None = None
        self.results_dir = Path("results") / cfg.proj
        self._apply_tagging()
        self.task_factory = TaskStructFactory(cfg.data_dir, preprocessing=cfg.preprocessing.id)
        for task in self.cfg.task_list:
            try:
                check_tags(task)
            except ValueError as exc:
                raise MisconfigurationError(str(exc)) from None
            self.task_factory.task_file(task)  # unknown tasks fail here, before any work starts
        # results of the running step; written to its metrics.json by the job runner
        self.step_results: dict[str, Any] = {}
        self._checked_checkpoints: Path | None = None
        self.metrics_callback = None
        self.checkpoint_callback = None
        self.commands: list[Callable[..., None]] = [self.prepare_exp]
        self.params: list[list[Any]] = [[]]
        self.create_routine()
        self.commands.append(self.finish_exp)
        self.params.append([])
        if len(self.commands) != len(self.params):
            raise RuntimeError(
                "Commands and params lengths differ after create_routine; append one params list per command."
            )
        self.step_names = [step_name(c.__name__, p) for c, p in zip(self.commands, self.params)]
        duplicates = sorted(n for n, count in Counter(self.step_names).items() if count > 1)
        if duplicates:
            raise MisconfigurationError(
                f"The schedule contains the step(s) {duplicates} more than once. Each (command, params) "
                "pair must be unique: give repeated steps distinguishing params."
            )
        logger.debug("Schedule of %d steps created.", len(self.commands))

    def _apply_tagging(self) -> None:
        cfg = self.cfg
        task_list = list(cfg.task_list)
        if cfg.tagging.all:
            if not cfg.tagging.all.startswith(TAG_SEP):
                raise MisconfigurationError(f'tagging.all="{cfg.tagging.all}" must start with "{TAG_SEP}".')
            task_list = [task + cfg.tagging.all for task in task_list]
        if cfg.tagging.variants:
            variants = []
            for variant in cfg.tagging.variants:
                if not variant.startswith(TAG_SEP):
                    raise MisconfigurationError(f'tagging.variants entry "{variant}" must start with "{TAG_SEP}".')
                variants += task_list if variant == f"{TAG_SEP}identity" else [t + variant for t in task_list]
            task_list = variants
        task_list = deduplicate(task_list)
        self.pivot = cfg.pivot.name
        if self.pivot:
            new_name = (self.pivot + (cfg.pivot.tags or "")).strip()
            if self.pivot in task_list:
                task_list[task_list.index(self.pivot)] = new_name
            elif new_name not in task_list:
                task_list.append(new_name)
                logger.info("Added pivot task %s to task_list.", new_name)
            self.pivot = new_name
            logger.info("Pivot task is %s.", self.highlight_text(self.pivot))
        cfg.task_list = task_list

    # -- the schedule -------------------------------------------------------------------------

    @abc.abstractmethod
    def create_routine(self) -> None:
        """Adds commands and parameters to the schedule, e.g.::

            if 'xyz' in self.subroutines:
                for task in self.cfg.task_list:
                    self.commands.append(self.MY_IMPLEMENTED_ROUTINE)
                    self.params.append([task])
        """

    def step_dependencies(self, command_ix: int) -> list[int] | None:
        """Indices of the steps whose outputs step ``command_ix`` reads.

        ``None`` (the default) keeps the seed's order: the step runs after the previous one. A
        scheduler that returns explicit lists lets independent steps run in parallel. Every step
        runs after ``prepare_exp`` and before ``finish_exp`` in any case.
        """
        return None

    def step_tasks(self, command_ix: int) -> list[str]:
        """Tasks whose files step ``command_ix`` reads (its Snakemake inputs besides dependencies).

        Default: the task names among its params, else every task of the experiment;
        ``finish_exp`` reads only step outputs.
        """
        if self.commands[command_ix].__name__ == "finish_exp":
            return []
        tasks = self.resolved_cfg["task_list"]
        named = [p for p in self.params[command_ix] if isinstance(p, str) and p in tasks]
        return named or list(tasks)

    def command_config(self, command: str) -> dict[str, Any]:
        """The config slice that steps of ``command`` read (see :func:`reads_config`).

        It becomes the Snakemake ``params`` of the command's rule, so changing a key in it reruns
        exactly the steps of this command (and what depends on their outputs).
        """
        keys = getattr(getattr(self, command), "config_keys", None)
        plain = self.resolved_cfg
        if keys is None:
            return {k: v for k, v in plain.items() if k not in NON_RESULT_KEYS}
        return {key: select(plain, key) for key in keys}

    @functools.cached_property
    def resolved_cfg(self) -> dict[str, Any]:
        """The final config (after tagging and create_routine) as plain containers, resolved once."""
        return OmegaConf.to_container(self.cfg, resolve=True)

    def schedule_entry(self, command_ix: int) -> str:
        """One line of the schedule in MML's format: ``method: <command> / <params>``."""
        return f"method: {self.commands[command_ix].__name__} / {self.params[command_ix]}"

    @staticmethod
    def compare_schedule_entries(entry_1: str, entry_2: str) -> bool:
        """Helper function in comparison of schedules.

        :param entry_1: line of a schedule (command and args)
        :param entry_2: line of a schedule (command and args)
        :return: true if lines are compatible (same command, same args), else false
        """

        def normal(entry: str) -> tuple[str, str]:
            command, _, args = entry.strip().partition(" / ")
            # bound-method reprs carry memory addresses ("object at 0x..."); only the name counts
            command = re.sub(r" object at 0x[0-9a-f]+", "", command)
            return " ".join(command.split()), "".join(args.split())

        return normal(entry_1) == normal(entry_2)

    def set_active_naming(self, command_ix: int) -> None:
        """Defines the active_step_naming attribute for the given command index.

        The name is stable across reruns (no timestamp, unlike MML), so an interrupted step finds
        its checkpoints in ``get_checkpoints_dir()`` when Snakemake runs it again.
        """
        self.active_step_naming = self.step_names[command_ix]

    def step_index(self, name: str) -> int:
        """Index of the step called ``name``."""
        try:
            return self.step_names.index(name)
        except ValueError:
            raise KeyError(
                f"Step '{name}' is not part of the current schedule ({len(self.step_names)} steps). "
                "The config changed since the job was planned; rerun snakemake."
            ) from None

    # -- files --------------------------------------------------------------------------------

    def get_checkpoints_dir(self) -> Path:
        """Path to store checkpoints of the active step (kept out of Snakemake's declared outputs)."""
        return self.results_dir / "checkpoints" / self.active_step_naming

    def step_dir(self, name: str | None = None) -> Path:
        """Folder of a step's outputs (``metrics.json``, predictions, weights); default: active step."""
        return self.results_dir / "steps" / (name or self.active_step_naming)

    def read_step_results(self, command: Callable | str, params: Sequence[Any]) -> dict[str, Any]:
        """The ``results`` a finished step recorded in its ``metrics.json``."""
        name = step_name(command if isinstance(command, str) else command.__name__, params)
        path = self.step_dir(name) / "metrics.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"Step '{name}' has no results at {path}. Run the step first (it must be part of the "
                "schedule, e.g. add its subroutine to mode.subroutines)."
            )
        with open(path) as fh:
            return json.load(fh)["results"]

    # -- hooks ----------------------------------------------------------------------------------

    def after_preparation_hook(self) -> None:
        """Runs after the task structs are prepared, in prepare_exp and at the start of every job.

        Every step runs in its own process, so state that steps share must be loaded here from
        files earlier steps wrote (MML's continue mode works the same way).
        """

    def before_finishing_hook(self) -> None:
        """Final hook at the end of an experiment, e.g. aggregation or plots; may set return_value."""

    # -- first and last step ------------------------------------------------------------------

    @reads_config("data_dir", "preprocessing", "task_list")
    def prepare_exp(self) -> None:
        """First command of any experiment: creates and checks every task struct, writes the schedule.

        Do not overwrite; use :meth:`after_preparation_hook` for additional preparation.
        """
        logger.info("Preparing experiment %s with %d steps ...", self.cfg.proj, len(self.commands))
        for task in self.cfg.task_list:
            struct = self.task_factory.get_by_name(task)
            check_files_exist(self.task_factory.load_description(task), struct.paths["dataset_root"])
        self.task_factory.dump(self.results_dir / "tasks.json")
        atomic_write_text(
            self.results_dir / "schedule.txt",
            "".join(self.schedule_entry(ix) + "\n" for ix in range(len(self.commands))),
        )
        self.after_preparation_hook()
        self.step_results["tasks"] = list(self.cfg.task_list)
        logger.info("Starting experiment!")

    def finish_exp(self) -> None:
        """Last command of any experiment: runs :meth:`before_finishing_hook`, writes the summary.

        ``summary.json``, ``summary.csv``, ``summary.md`` and ``plots/fold_metrics.png`` (see
        :mod:`mml_core.results.outputs`); hooks add their own plots.

        Do not overwrite; use :meth:`before_finishing_hook` (it may fill ``self.summary`` and set
        ``self.return_value``).
        """
        self._check_results_match_config()
        self.summary: dict[str, Any] = {}
        self.before_finishing_hook()
        summary = {
            "proj": self.cfg.proj,
            "scheduler": type(self).__name__,
            "return_value": self.return_value,
            **self.summary,
            "steps": self.step_names,
        }
        atomic_write_json(self.results_dir / "summary.json", summary)
        write_summary_outputs(summary, self.results_dir)
        self.step_results["return_value"] = self.return_value
        logger.info("Successfully finished all experiments! Summary: %s", self.results_dir / "summary.json")

    def _check_results_match_config(self) -> None:
        """Refuse to summarise step results computed under another config than the current one.

        Snakemake reruns a step whose config slice changed only while its metadata (.snakemake/)
        knows the old slice; results copied from elsewhere or a deleted .snakemake/ would slip
        through and mix configs in one summary. Nothing is deleted here.
        """
        stale = []
        for ix, name in enumerate(self.step_names[:-1]):
            path = self.step_dir(name) / "metrics.json"
            if not path.is_file():
                continue
            record = json.loads(path.read_text())
            command = self.commands[ix].__name__
            if record.get("config_hash") != config_hash(self.command_config(command)) or not (
                self.compare_schedule_entries(record.get("entry", ""), self.schedule_entry(ix))
            ):
                stale.append((command, name))
        if stale:
            raise MisconfigurationError(stale_results_message(stale, self.results_dir))

    # -- factories (import torch lazily) --------------------------------------------------------

    def get_struct(self, task_name: str) -> TaskStruct:
        """Convenience function to access a task struct.

        :param str task_name: name of the task
        :return: the corresponding task struct
        """
        return self.task_factory.get_by_name(task_name)

    def highlight_text(self, text: str) -> str:
        """Helper function in highlighting text within terminal (switch: ``logging.highlight_text``)."""
        if self.cfg.logging.highlight_text:
            return f"\033[1;33;46m{text}\033[0m"
        return text

    def create_datamodule(self, task_structs: TaskStruct | list[TaskStruct], fold: int = 0) -> MultiTaskDataModule:
        """Creates a pytorch lightning datamodule.

        :param task_structs: task struct(s) to create datamodule from (the first is the pivot)
        :param fold: fold to be used as validation split
        """
        from mml_core.data.datamodule import MultiTaskDataModule

        if isinstance(task_structs, TaskStruct):
            task_structs = [task_structs]
        return MultiTaskDataModule(
            task_structs=task_structs,
            descriptions={s.name: self.task_factory.load_description(s.name) for s in task_structs},
            fold=fold,
            batch_size=self.cfg.sampling.batch_size,
            num_workers=self.cfg.sampling.num_workers,
            cache=self.cfg.sampling.enable_caching,
            seed=self.cfg.seed,
        )

    def create_model(self, task_structs: list[TaskStruct], task_weights: list[float] | None = None) -> pl.LightningModule:
        """Creates a pytorch lightning module: ``arch`` backbone plus one head per task.

        :param task_structs: list of task structs to construct lightning module
        :param task_weights: (optional) list of task weights to weigh loss
        """
        from mml_core.models.backbones import build_backbone
        from mml_core.models.module import MultiTaskModule

        unsupported = [s.name for s in task_structs if s.task_type != "classification"]
        if unsupported:
            raise MisconfigurationError(
                f"Tasks {unsupported} are not classification tasks; mml_core trains classification tasks only."
            )
        plain = OmegaConf.to_container(self.cfg, resolve=True)
        # the pivot's image size (datasets resize each task to its largest images; RGB as in MML)
        sizes = task_structs[0].sizes
        image_size = min(int(sizes.get("max_height") or 224), int(sizes.get("max_width") or 224))
        return MultiTaskModule(
            backbone=build_backbone(plain["arch"], in_channels=3, image_size=image_size),
            task_classes={s.name: s.num_classes for s in task_structs},
            task_weights=list(task_weights) if task_weights else None,
            optimizer=plain["optimizer"],
            lr_scheduler=plain["lr_scheduler"],
        )

    def create_trainer(self, monitor: tuple[str, str] | None = None, metrics_callback: bool = False) -> pl.Trainer:
        """Creates a trainer from ``cfg.trainer`` with callbacks from ``cfg.cbs``.

        Checkpoints of the active step go to :meth:`get_checkpoints_dir`: ``last.ckpt`` every epoch,
        the best by ``monitor`` (metric name, "min"/"max") when given, and ``time_backup.ckpt`` at
        least every 30 minutes. The callbacks are available as :attr:`checkpoint_callback` and (with
        ``metrics_callback=True``) :attr:`metrics_callback`.
        """
        from mml_core.training.trainer import build_trainer

        plain = OmegaConf.to_container(self.cfg, resolve=True)
        trainer, self.checkpoint_callback, tracker = build_trainer(
            trainer_cfg=plain["trainer"],
            callbacks_cfg=plain["cbs"],
            logger_cfg=plain["logging"]["exp_logger"],
            checkpoint_dir=self.get_checkpoints_dir(),
            log_dir=self.results_dir / "logs",
            run_name=self.active_step_naming,
            seed=self.cfg.seed,
            monitor=monitor,
            metrics_callback=metrics_callback,
        )
        if tracker is not None:
            self.metrics_callback = tracker
        return trainer

    def resume_checkpoint(self) -> Path | None:
        """The checkpoint an interrupted run of the active step left behind, if any.

        Checkpoints record the schedule entry and config hash of the step that wrote them
        (``step.json``). Checkpoints of a different entry or config (the step reruns because its
        config changed) are moved aside to ``<dir>.stale-<time>`` (never deleted) and the step
        starts fresh; corrupt files are skipped (see :func:`~mml_core.training.resume.find_resume_checkpoint`).
        """
        from mml_core.training.trainer import latest_checkpoint

        directory = self.get_checkpoints_dir()
        if self._checked_checkpoints != directory:
            self._claim_checkpoints_dir(directory)
            self._checked_checkpoints = directory
        return latest_checkpoint(directory)

    def _claim_checkpoints_dir(self, directory: Path) -> None:
        ix = self.step_index(self.active_step_naming)
        record = {
            "entry": self.schedule_entry(ix),
            "config_hash": config_hash(self.command_config(self.commands[ix].__name__)),
        }
        marker = directory / "step.json"
        if marker.is_file():
            old = json.loads(marker.read_text())
            same = self.compare_schedule_entries(old.get("entry", ""), record["entry"])
            if not same or old.get("config_hash") != record["config_hash"]:
                aside = directory.with_name(f"{directory.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
                directory.rename(aside)
                logger.warning(
                    "Checkpoints in %s were written under a different config (%s); moved them to %s and "
                    "starting this step fresh.", directory, old.get("entry"), aside,
                )
        atomic_write_json(marker, record)

    def lightning_tune(
        self,
        trainer: pl.Trainer,
        model: pl.LightningModule,
        datamodule: pl.LightningDataModule | None,
        train_dataloaders: Any = None,
    ) -> None:
        """Tune a model / datamodule based on ``cfg.tune``; skipped when the step resumes from a checkpoint."""
        from mml_core.training.trainer import tune

        if self.resume_checkpoint() is not None:
            logger.info("Tuning skipped: the step resumes from a checkpoint that holds the tuned values.")
            return
        tune(trainer, model, datamodule, OmegaConf.to_container(self.cfg.tune, resolve=True), train_dataloaders)

    # -- running ---------------------------------------------------------------------------------

    def run(self, cores: int = 1, **settings: Any) -> float | None:
        """Runs the schedule through Snakemake's Python API in this process and returns return_value.

        Same pipeline, files and resumption as ``snakemake --cores N`` in the current directory;
        ``settings`` are passed to :func:`mml_core.schedulers.api.run_workflow`.
        """
        from mml_core.schedulers.api import run_workflow

        summary = run_workflow(self.validated_config, cores=cores, **settings)
        self.return_value = summary.get("return_value")
        return self.return_value
