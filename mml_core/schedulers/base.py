"""``AbstractBaseScheduler``: MML's scheduler API, with Snakemake running the schedule.

Subclasses write ``create_routine`` exactly as in MML (append bound methods to ``self.commands``
and their arguments to ``self.params``). Each (command, params) pair becomes a *step*
(:mod:`~mml_core.schedulers.steps` names it and owns its files); :mod:`~mml_core.schedulers.plan`
turns the schedule into Snakemake rules and each Snakemake job rebuilds the scheduler and runs
one step (:mod:`mml_core.jobs.runner`).

The methods here are the seed's API; each delegates to the room that owns the work: step layout
(``steps``), records and staleness (``provenance``), task-list tagging (``mml_core.tasks``) and
the Lightning factories (``factories``). The config is read-only once ``create_routine`` returned.
Planning never imports torch: the factories import it inside the functions. The module is longer
than most (about 500 lines) because it is MML's whole scheduler API, thirty documented methods.
"""

from __future__ import annotations

import abc
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from mml_core.config import MisconfigurationError, config_hash, select
from mml_core.config.record import overrides
from mml_core.io import atomic_write_json, atomic_write_text
from mml_core.results.headlines import summary_headline
from mml_core.results.outputs import FINISH_OUTPUTS, SUMMARY_JSON, SUMMARY_MD, write_summary_outputs
from mml_core.results.report.pages import RunFacts
from mml_core.schedulers import factories, provenance
from mml_core.schedulers.steps import METRICS, StepLayout, step_name
from mml_core.tasks import TaskStruct, TaskStructFactory
from mml_core.tasks.tags import TagError, check_tags
from mml_core.tasks.task_list import expand_task_list

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from mml_core.data.datamodule import MultiTaskDataModule

logger = logging.getLogger(__name__)

# config keys that never change a step's results (kept out of the default params slice); the sweep
# keys describe the trials around an experiment (a trial's own values are in its other keys)
NON_RESULT_KEYS = ("proj", "logging", "resources", "search_space", "hpo", "use_best_params", "trial")

__all__ = ["AbstractBaseScheduler", "MisconfigurationError", "reads_config", "step_name"]


def reads_config(*keys: str) -> Callable[[Callable], Callable]:
    """Declare the (dotted) config keys a command reads.

    The keys become the step's Snakemake ``params``, so changing one of them reruns exactly the
    steps that read it (and, through their outputs, what depends on them). Commands without the
    decorator are assumed to read the whole config except :data:`NON_RESULT_KEYS` (``proj``,
    ``logging``, ``resources`` and the sweep keys).
    """

    def mark(command: Callable) -> Callable:
        command.config_keys = tuple(keys)
        return command

    return mark


class AbstractBaseScheduler(metaclass=abc.ABCMeta):
    """Base class of a series of experiments; see the module docstring for the Snakemake mapping."""

    def __init__(self, cfg: DictConfig, available_subroutines: list[str]):
        """Creates the schedule. Run it with ``snakemake`` or :meth:`run`.

        :param cfg: configs of the current run (validated, see :mod:`mml_core.config`); not modified
        :param available_subroutines: subroutines the inheriting scheduler implements
        """
        # the validated config as given (before tagging): every job rebuilds this scheduler from it
        self.job_config: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)
        # this scheduler's own copy: tagging and create_routine complete it, then it is read-only
        self.cfg = OmegaConf.create(self.job_config)
        subroutines = self.cfg.mode.subroutines
        if not OmegaConf.is_list(subroutines):
            raise MisconfigurationError(
                f"mode.subroutines must be a list, e.g. [train, test]; got {type(subroutines).__name__}."
            )
        if not subroutines:
            raise MisconfigurationError(f"mode.subroutines is empty. Choose one or more of {available_subroutines}.")
        unknown = [s for s in subroutines if s not in available_subroutines]
        if unknown:
            raise MisconfigurationError(
                f"Unknown subroutine(s) {unknown} for {type(self).__name__}. "
                f"Allowed subroutines: {available_subroutines}."
            )
        self.subroutines = list(subroutines)
        # updated to the current step before each command runs; names checkpoints and logs
        self.active_step_naming = "init"
        # returned by run(); set in before_finishing_hook for black-box optimisation
        self.return_value: float | None = None
        self.layout = StepLayout.of_config(self.cfg)
        self.results_dir = self.layout.root
        self._apply_tagging()
        preprocessing = self.cfg.preprocessing
        # a pipeline to apply on the fly lets tasks without the preprocessed version load from RAW
        self.task_factory = TaskStructFactory(
            self.cfg.data_dir, preprocessing=preprocessing.id, raw_fallback=bool(preprocessing.pipeline)
        )
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
        self._dependencies: dict[int, list[int]] = {}
        self.commands: list[Callable[..., None]] = [self.prepare_exp]
        self.params: list[list[Any]] = [[]]
        self.create_routine()
        self.commands.append(self.finish_exp)
        self.params.append([])
        if len(self.commands) != len(self.params):
            raise RuntimeError(
                "Commands and params lengths differ after create_routine; append one params list per command."
            )
        OmegaConf.set_readonly(self.cfg, True)
        # the final config as plain containers, converted once; it cannot drift from cfg (read-only)
        self.resolved_cfg: dict[str, Any] = OmegaConf.to_container(self.cfg, resolve=True)
        self._config_hashes: dict[str, tuple[str, str, int | None]] = {}
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
        try:
            tasks, self.pivot = expand_task_list(
                cfg.task_list, cfg.tagging.all, cfg.tagging.variants, cfg.pivot.name, cfg.pivot.tags
            )
        except TagError as exc:
            raise MisconfigurationError(str(exc)) from None
        if self.pivot:
            logger.info("Pivot task is %s.", self.highlight_text(self.pivot))
        cfg.task_list = tasks

    # -- the schedule -------------------------------------------------------------------------

    @abc.abstractmethod
    def create_routine(self) -> None:
        """Adds commands and parameters to the schedule, e.g.::

            if 'xyz' in self.subroutines:
                for task in self.cfg.task_list:
                    self.commands.append(self.MY_IMPLEMENTED_ROUTINE)
                    self.params.append([task])
        """

    def add_step(self, command: Callable[..., None], params: Sequence[Any], after: Iterable[int] | None = None) -> int:
        """Append a step as ``create_routine`` does by hand, optionally with the indices of the steps
        whose outputs it reads (see :meth:`step_dependencies`); returns the new step's index."""
        self.commands.append(command)
        self.params.append(list(params))
        ix = len(self.commands) - 1
        if after is not None:
            self._dependencies[ix] = sorted(set(after))
        return ix

    def step_dependencies(self, command_ix: int) -> list[int] | None:
        """Indices of the steps whose outputs step ``command_ix`` reads.

        ``None`` (steps appended without ``after``) keeps the seed's order: the step runs after the
        previous one. Explicit lists (:meth:`add_step`, or an override) let independent steps run in
        parallel. Every step runs after ``prepare_exp`` and before ``finish_exp`` in any case.
        """
        return self._dependencies.get(command_ix)

    def reads_steps(self, command_ix: int) -> list[int]:
        """Indices of the steps whose outputs step ``command_ix`` reads, as the plan runs them.

        Declared by :meth:`step_dependencies`; without a declaration, the previous step (the seed's
        order). ``prepare_exp`` reads none, ``finish_exp`` every step. A scheduler that declares
        dependencies lists ``prepare_exp`` (index 0) only where a step reads what it wrote, so
        re-preparing (e.g. a task added to task_list) does not rerun finished steps.
        """
        last = len(self.commands) - 1
        if command_ix == 0:
            return []
        if command_ix == last:
            return list(range(last))
        declared = self.step_dependencies(command_ix)
        return sorted(set(declared)) if declared is not None else [command_ix - 1]

    def step_files(self, command_ix: int) -> list[Path]:
        """The files step ``command_ix`` wrote besides its ``metrics.json`` (recorded with their sizes, so
        planning notices one that is lost or truncated): the files in its step folder; for
        ``finish_exp`` the summary and plots (:data:`~mml_core.results.outputs.FINISH_OUTPUTS`)."""
        if self.commands[command_ix].__name__ == "finish_exp":
            outputs = [self.results_dir / path for path in FINISH_OUTPUTS.values()]
        else:
            outputs = [self.step_dir(self.step_names[command_ix])]
        files = []
        for path in outputs:
            found = sorted(path.rglob("*")) if path.is_dir() else [path]
            files += [f for f in found if f.is_file() and f.name != METRICS and not f.name.startswith(".")]
        return files

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

    def step_input_files(self, command_ix: int) -> list[Path]:
        """Files outside this experiment that step ``command_ix`` reads, e.g. another project's ``model.pt``.

        They become the step's Snakemake inputs besides its dependencies and task files, so the step
        reruns when they change. Default: none.
        """
        return []

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

    def step_identity(self, command_ix: int) -> provenance.StepIdentity:
        """What step ``command_ix``'s results depend on besides its input files (see :mod:`.provenance`)."""
        command = self.commands[command_ix].__name__
        if command not in self._config_hashes:
            slice_ = self.command_config(command)
            self._config_hashes[command] = (config_hash(slice_), *provenance.extension_key(slice_))
        digest, extension_hash, max_epochs = self._config_hashes[command]
        return provenance.StepIdentity(
            name=self.step_names[command_ix],
            command=command,
            params=list(self.params[command_ix]),
            entry=self.schedule_entry(command_ix),
            config_hash=digest,
            extension_hash=extension_hash,
            max_epochs=max_epochs,
        )

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
            # MML's own schedule files hold bound-method reprs ("<bound method ... object at 0x...>")
            command = command.split(" object at 0x", 1)[0]
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
        return self.layout.checkpoints(self.active_step_naming)

    def step_dir(self, name: str | None = None) -> Path:
        """Folder of a step's outputs (``metrics.json``, predictions, weights); default: active step."""
        return self.layout.step_dir(name or self.active_step_naming)

    def read_step_results(self, command: Callable | str, params: Sequence[Any]) -> dict[str, Any]:
        """The ``results`` a finished step recorded in its ``metrics.json``."""
        name = step_name(command if isinstance(command, str) else command.__name__, params)
        path = self.layout.metrics(name)
        if not path.is_file():
            raise FileNotFoundError(
                f"Step '{name}' has no results at {path}. Run the step first (it must be part of the "
                "schedule, e.g. add its subroutine to mode.subroutines)."
            )
        return provenance.read_record(path)["results"]

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
        from mml_core.tasks.masks import check_sample_files

        logger.info("Preparing experiment %s with %d steps ...", self.cfg.proj, len(self.commands))
        for task in self.cfg.task_list:
            struct = self.task_factory.get_by_name(task)
            check_sample_files(self.task_factory.load_description(task), struct.paths["dataset_root"])
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

        ``summary.json`` (with the config), ``summary.csv``, ``summary.md``, ``plots/fold_metrics.png``
        and the report's pages (see :mod:`mml_core.results.outputs`); hooks add their own plots.

        Do not overwrite; use :meth:`before_finishing_hook` (it may fill ``self.summary`` and set
        ``self.return_value``).
        """
        # Snakemake reruns a step whose config slice changed only while .snakemake/ knows the old
        # slice; results copied from elsewhere must not mix configs in one summary
        current = [(self.step_identity(ix), self.layout.metrics(name)) for ix, name in enumerate(self.step_names[:-1])]
        stale = provenance.stale_records(current)
        if stale:
            raise MisconfigurationError(provenance.stale_results_message(stale, self.results_dir))
        self.summary: dict[str, Any] = {}
        self.before_finishing_hook()
        summary = {
            "proj": self.cfg.proj,
            "scheduler": type(self).__name__,
            "return_value": self.return_value,
            **self.summary,
            "steps": self.step_names,
            # the config the summary was computed with, so summaries compare on their own
            "config": self.job_config,
        }
        atomic_write_json(self.results_dir / SUMMARY_JSON, summary)
        facts = RunFacts(
            config=self.job_config, overrides=overrides(self.job_config), versions=provenance.versions(),
            code=provenance.code_version(), steps=provenance.step_rows([path for _, path in current]),
        )  # fmt: skip
        write_summary_outputs(summary, self.results_dir, facts)
        self.summary = summary
        self.step_results["return_value"] = self.return_value
        logger.info("Successfully finished all experiments! Summary: %s", self.results_dir / SUMMARY_JSON)

    def result_headline(self, command_ix: int) -> str:
        """What the console shows beside step ``command_ix`` once it finished, from its ``step_results``
        (the summary table after ``finish_exp``); subclasses describe their own commands."""
        command = self.commands[command_ix].__name__
        if command == "finish_exp":
            return summary_headline(self.summary, self.results_dir / SUMMARY_MD)
        if command == "prepare_exp":
            return f"{len(self.cfg.task_list)} task(s) checked, {len(self.commands)} steps scheduled"
        return ""

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
        structs = [task_structs] if isinstance(task_structs, TaskStruct) else task_structs
        return factories.build_datamodule(self.resolved_cfg, self.task_factory, structs, fold)

    def create_model(
        self, task_structs: list[TaskStruct], task_weights: list[float] | None = None, pretrained: bool = True
    ) -> pl.LightningModule:
        """Creates a pytorch lightning module: ``arch`` backbone plus one head per task.

        :param task_structs: list of task structs to construct lightning module
        :param task_weights: (optional) list of task weights to weigh loss
        :param pretrained: load ``arch``'s pretrained weights (False where trained weights follow)
        """
        return factories.build_model(self.resolved_cfg, task_structs, task_weights, pretrained)

    def create_trainer(self, monitor: tuple[str, str] | None = None, metrics_callback: bool = False) -> pl.Trainer:
        """Creates a trainer from ``cfg.trainer`` with callbacks from ``cfg.cbs``.

        Checkpoints of the active step go to :meth:`get_checkpoints_dir`: ``last.ckpt`` every epoch,
        the best by ``monitor`` (metric name, "min"/"max") when given, and ``time_backup.ckpt`` at
        least every 30 minutes. The callbacks are available as :attr:`checkpoint_callback` and (with
        ``metrics_callback=True``) :attr:`metrics_callback`.
        """
        trainer, self.checkpoint_callback, tracker = factories.build_trainer(
            self.resolved_cfg, self.layout, self.active_step_naming, self.get_checkpoints_dir(), monitor,
            metrics_callback,
        )  # fmt: skip
        if tracker is not None:
            self.metrics_callback = tracker
        return trainer

    def resume_checkpoint(self) -> Path | None:
        """The checkpoint an interrupted run of the active step left behind, if any.

        The checkpoint folder records the step's identity (``step.json``); checkpoints of another
        entry or config (the step reruns because its config changed) are moved aside (never
        deleted) and the step starts fresh, except that with ``mode.extend`` a higher
        ``trainer.max_epochs`` continues them (:func:`~mml_core.schedulers.provenance.claim_checkpoints`);
        corrupt files are skipped (:func:`~mml_core.training.resume.find_resume_checkpoint`).
        """
        from mml_core.training.trainer import latest_checkpoint

        directory = self.get_checkpoints_dir()
        if self._checked_checkpoints != directory:
            identity = self.step_identity(self.step_index(self.active_step_naming))
            provenance.claim_checkpoints(directory, identity, extend=bool(self.cfg.mode.extend))
            self._checked_checkpoints = directory
        return latest_checkpoint(directory)

    def lightning_tune(
        self,
        trainer: pl.Trainer,
        model: pl.LightningModule,
        datamodule: pl.LightningDataModule | None,
        train_dataloaders: Any = None,
    ) -> None:
        """Tune a model / datamodule based on ``cfg.tune``; skipped when the step resumes from a checkpoint."""
        if self.resume_checkpoint() is not None:
            logger.info("Tuning skipped: the step resumes from a checkpoint that holds the tuned values.")
            return
        factories.tune(self.resolved_cfg, trainer, model, datamodule, train_dataloaders)

    # -- running ---------------------------------------------------------------------------------

    def run(self, cores: int = 1, **settings: Any) -> float | None:
        """Runs the schedule through Snakemake in this process and returns return_value.

        Same pipeline, profile, files and resumption as ``snakemake --cores N`` in the current
        directory; ``settings`` are passed to :func:`mml_core.jobs.workflow.run_workflow`.
        """
        # the one upward import: run() is the seed API's way to start the whole pipeline
        from mml_core.jobs.workflow import run_workflow

        summary = run_workflow(self.job_config, cores=cores, **settings)
        self.return_value = summary.get("return_value")
        return self.return_value
