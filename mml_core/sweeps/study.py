"""The Optuna study of a sweep: its storage, asking trials in batches, telling their results.

**Storage** (``hpo.storage``): null - Optuna's journal file ``results/<proj>/sweep/study.journal``
(plain appends under a lock file: works on a shared file system, no server); a path - a journal
file there; a URL (``sqlite:///...``, ``postgresql://...``) - that database.

**Asking** happens in the main ``snakemake`` process only, while it plans. Trials are asked in
batches of ``hpo.n_jobs``; batch ``b`` is asked once every trial of the batches before it is told
(the sweep's checkpoint), so each ask sees the same finished trials however often the run was
interrupted. A trial is sampled on an in-memory copy of the study, with a sampler seeded by the
experiment seed plus the trial number, and then written to the storage in ONE operation
(``add_trial``: state RUNNING, params, user attribute ``mml_batch``): a kill leaves no trial or a
whole one, and a rerun finds the batch's trials again instead of asking new ones. Until the run
starts (Snakemake's ``onstart``) asks stay in memory: ``snakemake -n`` shows the batch that would
run and writes nothing; :meth:`SweepStudy.commit` writes them when jobs are about to run.

**Telling** happens in the batch job (:func:`tell_trials`), once all trials of a batch have their
summary: COMPLETE with the trial's ``return_value``, PRUNED when the pruning callback stopped it,
FAIL without a finite value. A trial already told is left as it is, so the job can be repeated
after a kill.

**Identity**: a study records its search space, direction, pruning and the config its trials
share (user attribute ``mml_identity``): each changes the trials' results. A storage whose study of that name records another identity,
or a journal file holding only other studies, stops planning with the difference and the fix.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mml_core.config import ConfigError
from mml_core.sweeps.space import Dimension

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

logger = logging.getLogger(__name__)

BATCH_ATTR = "mml_batch"
IDENTITY_ATTR = "mml_identity"
# set by the pruning callback on a trial it stopped (the epoch it stopped after)
PRUNED_ATTR = "mml_pruned_after_epoch"


class SweepError(ConfigError):
    """The study's storage cannot serve this sweep; the message names the storage and the fix."""


def is_url(storage: str) -> bool:
    """A database URL (``sqlite:///x.db``) rather than the path of a journal file."""
    return "://" in storage


def open_storage(storage: str, create: bool) -> optuna.storages.BaseStorage | None:
    """The Optuna storage ``storage`` names; None for a journal file that does not exist and ``create`` false."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if is_url(storage):
        return optuna.storages.RDBStorage(storage)
    path = Path(storage)
    if not path.is_file() and not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Optuna skips a line it cannot read at the end of a journal; a file of something else
        # must not be taken for an empty journal (the study would append to it)
        first = path.open("rb").readline() if path.is_file() else b""
        if first and "op_code" not in json.loads(first):
            raise ValueError("its first line is no journal entry")
        return JournalStorage(JournalFileBackend(str(path)))
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise SweepError(
            f"hpo.storage {path} is not an Optuna journal file ({type(exc).__name__}: {exc}). Point hpo.storage at "
            "the study's journal file, or at a new path (null: results/<proj>/sweep/study.journal)."
        ) from None


def _differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What differs between two study identities: each part's values, the config's top-level keys."""
    out = []
    for part in sorted(set(recorded) | set(current)):
        old, new = recorded.get(part), current.get(part)
        if old == new:
            continue
        if part == "config":
            old, new = old or {}, new or {}
            out.append(f"config keys {sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))}")
        else:
            out.append(f"{part} {json.dumps(old)} -> {json.dumps(new)}")
    return out


class SweepStudy:
    """The sweep's Optuna study: trials asked so far (written or not yet), asking and telling."""

    def __init__(
        self,
        name: str,
        storage: str,
        direction: str,
        sampler: str,
        seed: int,
        n_trials: int,
        n_jobs: int,
        dimensions: Sequence[Dimension],
        identity: Mapping[str, Any],
    ):
        self.name, self.storage, self.direction, self.sampler = name, storage, direction, sampler
        self.seed, self.n_trials, self.n_jobs = seed, n_trials, n_jobs
        self.distributions = {d.key: d.distribution() for d in dimensions}
        self.identity = {
            **identity,
            "direction": direction,
            "search_space": {key: _to_json(dist) for key, dist in self.distributions.items()},
        }
        self._study: optuna.Study | None = self._load()
        # asked while planning, written by commit() (a dry run never writes)
        self._pending: list[FrozenTrial] = []
        self._committed = False

    # -- storage --------------------------------------------------------------------------------

    def _load(self) -> optuna.Study | None:
        import optuna

        storage = open_storage(self.storage, create=False)
        if storage is None:
            return None
        try:
            names = [s.study_name for s in storage.get_all_studies()]
        except Exception as exc:  # a database or file Optuna cannot read
            raise SweepError(
                f"Cannot read the Optuna study storage {self.storage}: {type(exc).__name__}: {exc}."
            ) from None
        if self.name not in names:
            if names and not is_url(self.storage):
                raise SweepError(
                    f"The journal file {self.storage} holds the study {names[0]!r}, not {self.name!r}: it belongs to "
                    f"another study. Set hpo.study_name: {names[0]} to continue that one, or use another hpo.storage."
                )
            return None
        study = optuna.load_study(study_name=self.name, storage=storage)
        recorded = study.user_attrs.get(IDENTITY_ATTR)
        if recorded is None and study.trials:
            raise SweepError(
                f"The study {self.name!r} in {self.storage} was not created by an mml_core sweep (it records no "
                "search space). Use another hpo.study_name or hpo.storage."
            )
        if recorded is not None and recorded != self.identity:
            raise SweepError(
                f"The study {self.name!r} in {self.storage} was created for another sweep "
                f"({'; '.join(_differences(recorded, self.identity))}). Its trials would not fit this search. "
                "Restore those settings to continue it, or start a new study: set hpo.study_name (or "
                "hpo.storage) to a new name. Nothing was changed."
            )
        return study

    def commit(self) -> None:
        """Write the trials asked while planning; from now on every ask is written at once."""
        import optuna

        if self._study is None:
            storage = open_storage(self.storage, create=True)
            self._study = optuna.create_study(
                study_name=self.name, storage=storage, direction=self.direction, load_if_exists=True
            )
        if IDENTITY_ATTR not in self._study.user_attrs:
            self._study.set_user_attr(IDENTITY_ATTR, self.identity)
        pending, self._pending = self._pending, []
        for trial in pending:
            self._write(trial)
        self._committed = True

    def _write(self, trial: FrozenTrial) -> None:
        assert self._study is not None
        expected = len(self._study.get_trials(deepcopy=False))
        if trial.number != expected:
            raise SweepError(
                f"The study {self.name!r} in {self.storage} changed while this run planned (trial {trial.number} "
                f"became {expected}): another process asks trials of it. Run one sweep per study at a time."
            )
        self._study.add_trial(trial)

    # -- trials ---------------------------------------------------------------------------------

    def trials(self) -> list[FrozenTrial]:
        """Every trial asked so far, by number (written ones and those waiting for :meth:`commit`)."""
        written = self._study.get_trials(deepcopy=False) if self._study is not None else []
        return [*written, *self._pending]

    def batch(self, index: int, ask: bool) -> list[FrozenTrial]:
        """The trials of batch ``index``; with ``ask``, the missing ones are asked first.

        Its size is ``hpo.n_jobs``, or what is left of ``hpo.trials`` after the batches before it;
        an empty list means the study has all its trials. A told batch is closed (``hpo.n_jobs``
        raised later changes the batches to come). Only the planning process asks.
        """
        trials = self.trials()
        earlier = [t for t in trials if t.user_attrs.get(BATCH_ATTR, -1) < index]
        own = [t for t in trials if t.user_attrs.get(BATCH_ATTR) == index]
        wanted = min(self.n_jobs, self.n_trials - len(earlier))
        told = bool(own) and all(t.state.is_finished() for t in own)
        if not ask or told or len(own) >= wanted:
            return own
        unfinished = [t.number for t in earlier if not t.state.is_finished()]
        if unfinished:
            raise RuntimeError(
                f"Batch {index} asked before trials {unfinished} of earlier batches were told."
            )
        return own + self._ask(index, wanted - len(own), trials)

    def _sampler(self, number: int) -> optuna.samplers.BaseSampler:
        import optuna

        seed = self.seed + number
        if self.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed)

    def _ask(self, index: int, count: int, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        import optuna
        from optuna.trial import TrialState, create_trial

        scratch = optuna.create_study(direction=self.direction)
        scratch.add_trials(trials)
        asked = []
        for _ in range(count):
            number = len(scratch.trials)
            scratch.sampler = self._sampler(number)
            params = scratch.ask(self.distributions).params
            trial = create_trial(
                params=params, distributions=self.distributions, user_attrs={BATCH_ATTR: index},
                state=TrialState.RUNNING,
            )  # fmt: skip
            trial.number = number
            if self._committed:
                self._write(trial)
            else:
                self._pending.append(trial)
            asked.append(trial)
            logger.info("Asked trial %d of study %s (batch %d): %s", number, self.name, index, params)
        return asked


def tell_trials(
    storage: str, study_name: str, numbers: Sequence[int], values: Sequence[float | None]
) -> list[str]:
    """Tell each trial its ``return_value`` (the batch job): PRUNED if the pruning callback stopped it,
    FAIL without a finite value, else COMPLETE. A trial told before keeps its state, so a job killed
    halfway can simply run again. Returns the trials' states by name."""
    import optuna
    from optuna.trial import TrialState

    opened = open_storage(storage, create=False)
    if opened is None:
        raise SweepError(
            f"The study storage {storage} is gone; restore it, or remove results/<proj>/sweep to start over."
        )
    study = optuna.load_study(study_name=study_name, storage=opened)
    states = []
    for number, value in zip(numbers, values):
        trial = study.get_trials(deepcopy=False)[number]
        if not trial.state.is_finished():
            if PRUNED_ATTR in trial.user_attrs:
                study.tell(number, state=TrialState.PRUNED)
            elif value is None or not math.isfinite(value):
                study.tell(number, state=TrialState.FAIL)
            else:
                study.tell(number, value)
            logger.info("Told trial %d of study %s: %s", number, study_name, value)
        states.append(study.get_trials(deepcopy=False)[number].state.name)
    return states


def _to_json(distribution: Any) -> Any:
    from optuna.distributions import distribution_to_json

    return json.loads(distribution_to_json(distribution))
