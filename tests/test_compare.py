"""Comparing experiments side by side (``python -m mml_core.results.compare``), and the config records
it reads: flat keys, overrides against the default experiment, keys that differ."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mml_core.config import load_config
from mml_core.config.record import differing_keys, flatten, overrides, overrides_yaml
from mml_core.results.compare import NoExperiment, compare, find_experiments, main, to_markdown
from conftest import Tables
from mml_core.results.summary import aggregate


def finished(root: Path, proj: str, accs: list[float], **changes) -> Path:
    """A results folder as finish_exp leaves it: summary.json with the tasks and the config."""
    cfg = OmegaConf.to_container(load_config({"proj": proj, **changes}))
    summary = {
        "proj": proj, "scheduler": "TrainingScheduler", "return_value": 0.1 * len(accs),
        "tasks": {"sk_digits": {"acc": aggregate(accs), "loss": aggregate([0.2] * len(accs))}},
        "steps": ["prepare_exp", "finish_exp"], "config": cfg,
    }  # fmt: skip
    folder = root / proj
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


@pytest.fixture
def two(tmp_path) -> Path:
    """results/ with two projects that differ in two keys (and their names)."""
    results = tmp_path / "results"
    finished(results, "base", [0.9, 0.95])
    finished(results, "longer", [0.97, 0.99], trainer={"max_epochs": 20}, seed=7)
    return results


def test_two_projects_side_by_side_with_only_the_keys_that_differ(two):
    comparison = compare(find_experiments([two]))
    assert comparison.labels == ["base", "longer"]
    assert comparison.config == [("seed", ["42", "7"]), ("trainer.max_epochs", ["8", "20"])]
    assert [(task, metric) for task, metric, _ in comparison.metrics] == [("sk_digits", "acc"), ("sk_digits", "loss")]
    assert comparison.metrics[0][2] == [(0.925, pytest.approx(0.025)), (0.98, pytest.approx(0.01))]
    assert to_markdown(comparison).splitlines() == [
        "|  | base | longer |",
        "|---|---:|---:|",
        "| config: seed | 42 | 7 |",
        "| config: trainer.max_epochs | 8 | 20 |",
        "| sk_digits / acc | 0.9250 ± 0.0250 | 0.9800 ± 0.0100 |",
        "| sk_digits / loss | 0.2000 ± 0.0000 | 0.2000 ± 0.0000 |",
        "| return_value | 0.2 | 0.2 |",
    ]


def test_the_command_writes_csv_markdown_and_a_page(two, tmp_path, capsys):
    assert main([str(two / "base"), str(two / "longer"), "--out", str(tmp_path / "cmp")]) == 0
    rows = list(csv.reader((tmp_path / "cmp.csv").open()))
    assert rows[0] == ["section", "task", "key", "base", "base std", "longer", "longer std"]
    assert rows[1] == ["config", "", "seed", "42", "", "7", ""]
    assert rows[3][:4] == ["metric", "sk_digits", "acc", "0.925"] and float(rows[3][5]) == 0.98
    page = Tables((tmp_path / "cmp.html").read_text())
    assert [row[0] for row in page.tables[0]] == ["", "config: seed", "config: trainer.max_epochs"]
    assert page.tables[1][1] == ["sk_digits / acc", "0.9250 ± 0.0250", "0.9800 ± 0.0100"]
    assert (tmp_path / "cmp.md").read_text() == to_markdown(compare([two / "base", two / "longer"]))
    assert main([str(two)]) == 0 and "| config: seed | 42 | 7 |" in capsys.readouterr().out


def test_trials_of_a_sweep_are_found_below_their_project(tmp_path):
    trials = tmp_path / "results/sweep/trials"
    for trial, lr in enumerate((0.001, 0.01, 0.1)):
        finished(trials, str(trial), [0.9 + trial / 100], optimizer={"lr": lr})
    comparison = compare(find_experiments([tmp_path / "results"]))
    assert comparison.labels == ["0", "1", "2"]
    assert comparison.config == [("optimizer.lr", ["0.001", "0.01", "0.1"])]


def test_a_folder_without_finished_experiments_names_the_fix(tmp_path):
    (tmp_path / "results/unfinished/steps").mkdir(parents=True)
    with pytest.raises(NoExperiment, match="finish_exp writes it at the end of a run"):
        find_experiments([tmp_path / "results"])
    assert main([str(tmp_path / "results")]) == 1


def test_overrides_are_what_differs_from_the_default_experiment():
    cfg = OmegaConf.to_container(load_config(["trainer.max_epochs=3", "task_list=[sk_digits,sk_digits_low]",
                                              "lr_scheduler._target_=null"], configfiles=["config/quick.yaml"]))
    assert overrides(cfg) == ["proj=quick", "task_list=[sk_digits, sk_digits_low]", "mode.cv=false",
                              "trainer.max_epochs=3", "trainer.limit_train_batches=5", "trainer.limit_val_batches=2"]
    assert overrides(OmegaConf.to_container(load_config())) == []
    # a section replaced by a scalar is one override, not a removal of each of its keys
    assert overrides({"logging": {"exp_logger": None}}, {"logging": {"exp_logger": {"_target_": "x"}}}) == [
        "logging.exp_logger=null"
    ]
    assert overrides({"a": 1}, {"a": 1, "b": {"c": 2}}) == ["~b.c"]
    text = overrides_yaml(cfg, ["config/quick.yaml"], {"trainer": {"max_epochs": "3"}})
    assert "- trainer.max_epochs=3" in text and "configfiles:\n- config/quick.yaml" in text
    assert "command:" not in text
    # mml-snake's overrides reach Snakemake composed into one file: the command that started the run names them
    text = overrides_yaml(cfg, ["results/quick/configs/x.json"], {},
                          ["/venv/bin/mml-snake", "train", "trainer.max_epochs=3", "task_list=[a, b]"])
    assert "command: mml-snake train trainer.max_epochs=3 'task_list=[a, b]'" in text


def test_flat_keys_and_the_keys_that_differ():
    assert flatten({"a": {"b": 1, "c": {}}, "d": [1, 2]}) == {"a.b": 1, "d": [1, 2]}
    assert differing_keys([{"a": {"b": 1}, "x": 0}, {"a": {"b": 2}, "x": 0}, {"x": 0}]) == ["a.b"]
