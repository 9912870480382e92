"""Sweeps end to end (tiny settings): a grid sweep and an Optuna study as real snakemake runs.

One 2x2 grid sweep runs once per module; tests work on copies of its working directory. The long
checks (SIGKILL in the middle, studies killed twice, SLURM) are in test_sweep_resilience.py and
test_slurm.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from pathlib import Path

import pytest

from conftest import REPO, copy_workdir, no_torch_env, run_snakemake
from test_e2e import ACCEPTED_LINTS, job_counts

pytestmark = pytest.mark.e2e

# train only: each trial is prepare_exp, one train_fold, finish_exp (return_value: the val loss)
TINY = textwrap.dedent(
    """
    mode: {cv: false, subroutines: [train]}
    trainer: {max_epochs: 1, limit_train_batches: 3, limit_val_batches: 2}
    """
)
GRID = TINY + textwrap.dedent(
    """
    proj: grid
    search_space:
      optimizer.lr: choice(0.01, 0.001)
      sampling.batch_size: [16, 32]
    hpo: {sampler: grid}
    """
)
STUDY = textwrap.dedent(
    """
    proj: study
    mode: {cv: false, subroutines: [train]}
    trainer: {max_epochs: 2, limit_train_batches: 3, limit_val_batches: 2}
    search_space:
      optimizer.lr: choice(0.0001, 0.01)
    hpo:
      sampler: random
      trials: 3
      n_jobs: 2
      # stops a trial whose validation loss after an epoch is above 2.29 (lr 0.0001 barely learns)
      pruning: {_target_: optuna.pruners.ThresholdPruner, upper: 2.29}
    """
)
TRIAL_NAMES = {f"optimizer.lr={lr}+sampling.batch_size={bs}" for lr in ("0.01", "0.001") for bs in (16, 32)}


def sweep(workdir: Path, text: str, *args: str, data: Path, config=(), **kwargs):
    (workdir / "sweep.yaml").write_text(text)
    return run_snakemake(
        workdir, *args, configfiles=(workdir / "sweep.yaml",), config=[f"data_dir={data}", *config], **kwargs
    )


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }  # fmt: skip


@pytest.fixture(scope="module")
def finished_grid(tmp_path_factory, demo_data) -> Path:
    workdir = tmp_path_factory.mktemp("grid")
    sweep(workdir, GRID, "--cores", "2", data=demo_data)
    return workdir


@pytest.fixture
def grid_copy(finished_grid, tmp_path) -> Path:
    return copy_workdir(finished_grid, tmp_path / "work")


def test_grid_sweep_runs_every_combination_as_an_experiment_and_names_the_best(finished_grid):
    root = finished_grid / "results/grid"
    summary = read_json(root / "sweep.json")
    rows = {row["trial"]: row for row in summary["trials"]}
    assert set(rows) == TRIAL_NAMES and summary["trials_complete"] == 4
    for name, row in rows.items():
        trial = root / "trials" / name
        # each trial is an experiment of its own: its config, steps, summary
        (config_file,) = (trial / "configs").glob("*.json")
        config = read_json(config_file)
        assert config["trial"] == {"name": name, "number": None} and config["search_space"] == {}
        assert config["optimizer"]["lr"] == row["params"]["optimizer.lr"]
        assert config["sampling"]["batch_size"] == row["params"]["sampling.batch_size"]
        assert row["return_value"] == read_json(trial / "summary.json")["return_value"]
        assert row["status"] == "COMPLETE" and row["wall_time_s"] > 0
        assert (trial / "steps/train_fold--sk_digits_0/metrics.json").is_file()
    best = min(rows.values(), key=lambda row: row["return_value"])
    assert summary["best"]["trial"] == best["trial"] and summary["best"]["params"] == best["params"]
    assert f"**{best['trial']}**" in (root / "sweep.md").read_text()
    csv = (root / "sweep.csv").read_text().splitlines()
    assert csv[0] == "trial,number,status,return_value,wall_time_s,optimizer.lr,sampling.batch_size"
    assert len(csv) == 5
    for plot in ("optimization_history", "parallel_coordinates", "param_importances"):
        assert (root / f"sweep/plots/{plot}.png").read_bytes()[:4] == b"\x89PNG"


def test_grid_rerun_does_nothing_and_added_values_run_only_the_new_trials(grid_copy, demo_data):
    again = sweep(grid_copy, GRID, "--cores", "2", data=demo_data)
    assert "Nothing to be done" in again.stdout + again.stderr
    more = sweep(
        grid_copy, GRID, "-n", data=demo_data, config=["search_space={sampling.batch_size: [16, 32, 64]}"]
    )
    assert job_counts(more.stdout) == {
        "prepare_exp": 2, "train_fold": 2, "finish_exp": 2, "sweep_summary": 1, "all": 1
    }  # fmt: skip
    assert "optimizer.lr=0.01+sampling.batch_size=64" in more.stdout


def test_dry_run_of_a_grid_lists_every_trial_without_torch_and_writes_nothing(tmp_path, demo_data):
    work = tmp_path / "work"
    work.mkdir()
    dry = sweep(work, GRID, "-n", data=demo_data, env=no_torch_env(tmp_path / "block"))
    assert job_counts(dry.stdout) == {
        "prepare_exp": 4,
        "train_fold": 4,
        "finish_exp": 4,
        "sweep_summary": 1,
        "all": 1,
    }
    for name in TRIAL_NAMES:
        assert f"results/grid/trials/{name}/steps/train_fold--sk_digits_0/metrics.json" in dry.stdout
    assert_writes_only_fingerprints(work)


def assert_writes_only_fingerprints(work: Path) -> None:
    """A dry run writes nothing but the data fingerprints every plan reads (no config, step or study)."""
    written = [p for p in (work / "results").rglob("*") if p.is_file()]
    assert all(p.parent.name == "fingerprints" for p in written), written


def test_report_shows_the_sweep_and_tells_the_trials_apart(grid_copy, demo_data):
    sweep(grid_copy, GRID, "--report", "report.html", data=demo_data)
    html = (grid_copy / "report.html").read_text()
    for text in (
        "sweep.md",
        "sweep.csv",
        "optimization_history.png",
        "parallel_coordinates.png",
        "param_importances.png",
        "trials (best marked)",
    ):
        assert text in html, text
    for name in TRIAL_NAMES:
        assert name in html  # the trial label of each trial's summary and plots
    # the first page is the sweep's: its settings and a table of every trial
    assert "mml_core sweep grid" in html and "4 of 4 trials complete" in html


def test_use_best_params_runs_the_best_trial_as_the_proj_experiment(grid_copy, demo_data):
    best = read_json(grid_copy / "results/grid/sweep.json")["best"]
    dry = sweep(grid_copy, GRID, "-n", data=demo_data, config=["use_best_params=true"])
    assert job_counts(dry.stdout) == {"prepare_exp": 1, "train_fold": 1, "finish_exp": 1, "all": 1}
    assert "results/grid/steps/train_fold--sk_digits_0/metrics.json" in dry.stdout
    sweep(grid_copy, GRID, "--cores", "1", "results/grid/steps/prepare_exp/metrics.json", data=demo_data,
          config=["use_best_params=true"])  # fmt: skip
    (config_file,) = (grid_copy / "results/grid/configs").glob("*.json")
    config = read_json(config_file)
    assert config["optimizer"]["lr"] == best["params"]["optimizer.lr"]
    assert config["sampling"]["batch_size"] == best["params"]["sampling.batch_size"]
    assert config["search_space"] == {} and config["trial"] is None
    # another proj takes the params of this one's sweep; a proj without a finished sweep is refused
    other = sweep(grid_copy, GRID, "-n", data=demo_data, config=["proj=final", "use_best_params=grid"])
    assert "results/final/steps/train_fold--sk_digits_0/metrics.json" in other.stdout
    missing = sweep(grid_copy, GRID, "-n", data=demo_data, config=["use_best_params=nosuch"], check=False)
    assert missing.returncode != 0
    assert "use_best_params: no finished sweep of proj 'nosuch'" in missing.stdout + missing.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["search_space={trainer.no_such_key: [1, 2]}"], "Unknown config key 'trainer.no_such_key'"),
        (["search_space={optimizer.lr: []}"], "search_space key 'optimizer.lr' has no values"),
        (["search_space={proj: [a, b]}"], "search_space key 'proj' cannot vary between trials"),
        (["search_space={optimizer.lr: 'interval(0.001, 0.1)'}"], "interval, which has no finite list"),
        (["hpo={trials: 2}"], "The grid has 4 combinations but hpo.trials=2"),
    ],
    ids=["unknown-key", "empty-choice", "fixed-key", "interval-on-grid", "too-many"],
)
def test_bad_search_space_stops_with_one_message_and_loses_nothing(grid_copy, demo_data, change, message):
    before = digests(grid_copy / "results")
    bad = sweep(grid_copy, GRID, "--cores", "2", data=demo_data, config=change, check=False)
    output = bad.stdout + bad.stderr
    assert bad.returncode != 0 and message in output, output[-3000:]
    assert output.count("mml_core: ") == 1
    assert digests(grid_copy / "results") == before


def test_optuna_study_in_batches_with_pruning(tmp_path, demo_data):
    dry = sweep(tmp_path, STUDY, "-n", data=demo_data)
    # the first batch (hpo.n_jobs trials) and its tell job; nothing written, not even the study
    assert job_counts(dry.stdout)["train_fold"] == 2 and job_counts(dry.stdout)["hpo_batch"] == 1
    assert "results/study/trials/trial-000/" in dry.stdout and "trial-002" not in dry.stdout
    assert_writes_only_fingerprints(tmp_path)

    sweep(tmp_path, STUDY, "--cores", "2", data=demo_data)
    import optuna

    from mml_core.sweeps.study import open_storage

    root = tmp_path / "results/study"
    study = optuna.load_study(
        study_name="study", storage=open_storage(str(root / "sweep/study.journal"), False)
    )
    assert [(t.number, t.user_attrs["mml_batch"]) for t in study.trials] == [(0, 0), (1, 0), (2, 1)]
    summary = read_json(root / "sweep.json")
    states = {row["number"]: row["status"] for row in summary["trials"]}
    assert states == {t.number: t.state.name for t in study.trials}
    pruned = set()
    for trial in study.trials:
        train = read_json(
            root / f"trials/trial-{trial.number:03d}/steps/train_fold--sk_digits_0/metrics.json"
        )
        first_val_loss = train["results"]["history"][0]["val/sk_digits/loss"]
        if first_val_loss > 2.29:  # the pruner's threshold: stopped after the first of two epochs
            pruned.add(trial.number)
            assert train["results"]["epochs"] == 1
        assert trial.params["optimizer.lr"] in (0.0001, 0.01)
    assert pruned and pruned != set(states)  # this seed gives both outcomes
    assert {n for n, s in states.items() if s == "PRUNED"} == pruned
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert summary["best"]["number"] == min(complete, key=lambda t: t.value).number
    again = sweep(tmp_path, STUDY, "--cores", "2", data=demo_data)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_storage_of_another_study_is_refused_and_loses_nothing(tmp_path, demo_data):
    # a study created for another search space in the journal this sweep would use
    import optuna

    from mml_core.sweeps.study import IDENTITY_ATTR, open_storage

    journal = tmp_path / "results/study/sweep/study.journal"
    other = optuna.create_study(study_name="study", storage=open_storage(str(journal), create=True))
    other.set_user_attr(
        IDENTITY_ATTR, {"direction": "minimize", "search_space": {"arch.drop_rate": {}}, "config": {}}
    )
    before = journal.read_bytes()
    bad = sweep(tmp_path, STUDY, "-n", data=demo_data, check=False)
    output = bad.stdout + bad.stderr
    assert bad.returncode != 0 and "was created for another sweep" in output and "hpo.study_name" in output, (
        output
    )
    assert journal.read_bytes() == before
    # a journal file holding only another study (e.g. another proj's)
    bad = sweep(tmp_path, STUDY, "-n", data=demo_data, config=["hpo={study_name: mine}"], check=False)
    assert "holds the study 'study', not 'mine'" in bad.stdout + bad.stderr
    # a file that is no journal at all
    (tmp_path / "notes.txt").write_text("not a journal\n")
    bad = sweep(tmp_path, STUDY, "-n", data=demo_data, config=["hpo={storage: notes.txt}"], check=False)
    assert "is not an Optuna journal file" in bad.stdout + bad.stderr


@pytest.mark.parametrize(("example", "trained"), [("sweep_grid.yaml", 4), ("sweep_tpe.yaml", 2)])
def test_example_sweeps_plan_their_first_trials_and_pass_snakemake_lint(
    tmp_path, demo_data, example, trained
):
    files = (REPO / "config" / example,)
    dry = run_snakemake(tmp_path, "-n", configfiles=files, config=[f"data_dir={demo_data}"])
    assert job_counts(dry.stdout)["train_fold"] == trained  # a grid: every trial; a study: its first batch
    lint = run_snakemake(tmp_path, "--lint", configfiles=files, config=[f"data_dir={demo_data}"], check=False)
    output = lint.stdout + lint.stderr
    assert set(re.findall(r"^    \* (.+?):?$", output, re.MULTILINE)) == ACCEPTED_LINTS, output
    assert_writes_only_fingerprints(tmp_path)
