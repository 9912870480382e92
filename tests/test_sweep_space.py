"""The search space (Hydra's sweeper syntax), trial names and trial configs, without running anything."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from mml_core.config import load_config
from mml_core.schedulers.steps import StepLayout
from mml_core.sweeps.space import SearchSpaceError, parse_space
from mml_core.sweeps.trials import Trial, grid_name, grid_trials, optuna_name, set_key, trial_config


def test_hydra_sweep_syntax_gives_the_values_and_optuna_distributions():
    dims = parse_space(
        {
            "optimizer": {"lr": "tag(log, interval(1e-4, 0.1))"},  # nested mapping = dotted key
            "sampling.batch_size": "choice(32, 64, 128)",
            "trainer.max_epochs": "range(2, 10, 2)",
            "arch.drop_rate": "range(0, 0.3, 0.1)",
            "arch.name": ["small_cnn", "resnet18"],
            "tune.lr": "int(interval(1, 4))",
            "seed": 3,
        }
    )
    by_key = {d.key: d for d in dims}
    assert [d.key for d in dims] == sorted(by_key)  # sorted: names and records never depend on the order
    assert by_key["sampling.batch_size"].grid_values == (32, 64, 128)
    assert by_key["trainer.max_epochs"].grid_values == (2, 4, 6, 8)
    assert by_key["arch.drop_rate"].grid_values == (0.0, 0.1, 0.2)  # no 0.30000000000000004
    assert by_key["arch.name"].grid_values == ("small_cnn", "resnet18")
    assert by_key["seed"].grid_values == (3,)
    lr = by_key["optimizer.lr"].distribution()
    assert (lr.low, lr.high, lr.log) == (1e-4, 0.1, True)
    epochs = by_key["trainer.max_epochs"].distribution()
    assert (epochs.low, epochs.high, epochs.step) == (2, 8, 2)
    assert type(by_key["tune.lr"].distribution()).__name__ == "IntDistribution"
    assert by_key["arch.name"].distribution().choices == ("small_cnn", "resnet18")
    with pytest.raises(SearchSpaceError, match="interval, which has no finite list of values for a grid"):
        _ = by_key["optimizer.lr"].grid_values


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"optimizer.lr": "choice()"}, "search_space key 'optimizer.lr' has no values"),
        ({"optimizer.lr": []}, "search_space key 'optimizer.lr' has no values"),
        ({"trainer.max_epochs": "range(5, 1)"}, "has no values"),
        ({"optimizer.lr": "interval(0.1, 0.01)"}, "is empty; low must be below high"),
        ({"optimizer.lr": "chioce(0.1, 0.01)"}, "unknown sweep function 'chioce"),
        ({"optimizer.lr": "tag(log, interval(0, 1))"}, "positive low bound"),
        ({"proj": ["a", "b"]}, "search_space key 'proj' cannot vary between trials"),
        ({"hpo.trials": [1, 2]}, "search_space key 'hpo.trials' cannot vary between trials"),
        ({"resources.train_fold.threads": [1, 2]}, "cannot vary between trials"),
        # what YAML makes of {optimizer.lr: interval(0.001, 0.1)}: the flow mapping cuts at the comma
        (
            {"optimizer.lr": "interval(0.001", "0.1)": None},
            "search_space key '0.1\\)' is not a dotted config key",
        ),
    ],
)
def test_bad_search_spaces_name_the_key_and_the_fix(entry, message):
    with pytest.raises(SearchSpaceError, match=message):
        parse_space(entry)


def test_optuna_choices_are_scalars():
    (dim,) = parse_space({"arch.name": [{"name": "a"}, {"name": "b"}]})
    assert len(dim.grid_values) == 2  # a grid can choose between mappings
    with pytest.raises(SearchSpaceError, match="Optuna's choices must be numbers, strings"):
        dim.distribution()


def test_grid_names_are_stable_when_values_are_added_and_distinct():
    small = grid_trials(parse_space({"optimizer.lr": [0.01, 0.001], "sampling.batch_size": [16, 32]}))
    large = grid_trials(parse_space({"optimizer.lr": [0.01, 0.001, 0.1], "sampling.batch_size": [16, 32]}))
    assert len(small) == 4 and len(large) == 6
    assert {t.name for t in small} < {t.name for t in large}  # adding a value renames no trial
    assert "optimizer.lr=0.001+sampling.batch_size=32" in {t.name for t in small}
    # names stay safe as paths and as Snakemake/SLURM wildcards: no "/", "," or quotes, never too long
    odd = grid_name({"arch": {"name": "resnet18", "drop_rate": 0.1}, "task_list": ["a/b", "c"]})
    assert odd.startswith("arch=h") and "/" not in odd and "," not in odd
    assert len(grid_name({f"k{i}.x": "value" for i in range(30)})) <= 120
    assert optuna_name(7) == "trial-007"
    with pytest.raises(SearchSpaceError, match="would share the name"):
        grid_trials(parse_space({"x.y": [1, "1"]}))


def test_trial_config_sets_dotted_keys_merges_mappings_and_names_the_trial():
    base = OmegaConf.to_container(load_config(["proj=study"]))
    plain = {**base, "search_space": {"optimizer.lr": [0.1]}}
    trial = Trial(
        "t1", 4, {"optimizer.lr": 0.1, "arch": {"drop_rate": 0.2}, "trainer.gradient_clip_val": 1.0}
    )
    config = trial_config(plain, trial)
    assert config["optimizer"]["lr"] == 0.1 and config["optimizer"]["_target_"] == "torch.optim.Adam"
    assert config["arch"] == {**base["arch"], "drop_rate": 0.2}  # merged, not replaced
    assert config["trainer"]["gradient_clip_val"] == 1.0
    assert config["search_space"] == {} and config["trial"] == {"name": "t1", "number": 4}
    assert StepLayout.of_config(config).root.as_posix() == "results/study/trials/t1"
    assert plain["optimizer"]["lr"] != 0.1  # the sweep's own config is untouched
    with pytest.raises(SearchSpaceError, match="config key 'optimizer.lr' holds 0.1, not a section"):
        set_key(config, "optimizer.lr.x", 1)


def test_a_runs_return_value_comes_from_its_summary_or_its_sweeps():
    from mml_core.sweeps import summary_path

    sweep = {"proj": "s", "search_space": {"seed": [1, 2]}}
    assert summary_path(load_config({"proj": "s"})).as_posix() == "results/s/summary.json"
    assert summary_path(load_config(sweep)).as_posix() == "results/s/sweep.json"
    # use_best_params runs one experiment; Snakemake's --config delivers the boolean as a string
    assert summary_path(load_config({**sweep, "use_best_params": "true"})).as_posix() == "results/s/summary.json"
