"""The Optuna study protocol at each point a run can be killed, without Snakemake or training.

Asking happens while planning (in memory until the run starts), each trial is written in one
storage operation, telling can be repeated: whatever point a kill hits, the next planning finds
the same trials and asks no trial twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mml_core.sweeps.space import parse_space
from mml_core.sweeps.study import BATCH_ATTR, SweepError, SweepStudy, tell_trials


def study(journal: Path, n_jobs: int = 2, n_trials: int = 4, config: dict | None = None) -> SweepStudy:
    return SweepStudy(
        name="s", storage=str(journal), direction="minimize", sampler="tpe", seed=42, n_trials=n_trials,
        n_jobs=n_jobs, dimensions=parse_space({"optimizer.lr": "tag(log, interval(1e-4, 0.1))", "x.y": [1, 2]}),
        identity={"config": config or {"seed": 42}},
    )  # fmt: skip


def summary(trials) -> list[tuple]:
    return [(t.number, t.user_attrs[BATCH_ATTR], t.state.name, t.params) for t in trials]


def test_asks_while_planning_stay_in_memory_until_the_run_starts(tmp_path):
    journal = tmp_path / "study.journal"
    planned = study(journal)
    asked = summary(planned.batch(0, ask=True))
    assert [a[:3] for a in asked] == [(0, 0, "RUNNING"), (1, 0, "RUNNING")]
    assert not journal.exists()  # a dry run writes nothing
    # the run starts: the same trials are written, and a later planning finds them instead of asking
    planned.commit()
    assert summary(study(journal).trials()) == asked
    assert summary(study(journal).batch(0, ask=True)) == asked
    # a dry run of a second planning asks again and gets the very same trials (seeded per number)
    assert summary(study(tmp_path / "other.journal").batch(0, ask=True)) == asked


def test_a_kill_between_the_asks_of_a_batch_asks_only_the_missing_trial(tmp_path):
    uninterrupted = study(tmp_path / "a.journal")
    uninterrupted.commit()
    expected = summary(uninterrupted.batch(0, ask=True))
    # killed after the first trial of the batch was written: one operation each, so it is whole
    killed = study(tmp_path / "b.journal", n_jobs=1)
    killed.commit()
    killed.batch(0, ask=True)
    rerun = study(tmp_path / "b.journal")
    rerun.commit()
    assert summary(rerun.batch(0, ask=True)) == expected
    assert len(rerun.trials()) == 2


def test_telling_twice_keeps_the_first_result_and_the_next_batch_waits_for_it(tmp_path):
    journal = tmp_path / "study.journal"
    planned = study(journal)
    planned.commit()
    planned.batch(0, ask=True)
    with pytest.raises(RuntimeError, match="before trials \\[0, 1\\] of earlier batches were told"):
        planned.batch(1, ask=True)
    assert tell_trials(str(journal), "s", [0, 1], [0.5, None]) == ["COMPLETE", "FAIL"]
    # the batch job killed after telling, then run again: nothing changes
    assert tell_trials(str(journal), "s", [0, 1], [0.7, 0.9]) == ["COMPLETE", "FAIL"]
    again = study(journal)
    assert [t.value for t in again.trials()] == [0.5, None]
    again.commit()
    assert [t.number for t in again.batch(1, ask=True)] == [2, 3]
    assert again.batch(2, ask=True) == []  # hpo.trials reached
    tell_trials(str(journal), "s", [2, 3], [0.4, 0.3])
    raised = study(journal, n_trials=5)
    raised.commit()
    assert [t.number for t in raised.batch(2, ask=True)] == [4]  # hpo.trials raised: one more
    # hpo.n_jobs raised later: told batches stay as they were
    wider = study(journal, n_jobs=3, n_trials=5)
    assert [len(wider.batch(index, ask=True)) for index in range(3)] == [2, 2, 1]


def test_a_study_of_another_config_is_refused(tmp_path):
    journal = tmp_path / "study.journal"
    first = study(journal)
    first.commit()
    with pytest.raises(SweepError, match=r"created for another sweep \(config keys \['seed'\]\)"):
        study(journal, config={"seed": 1})
