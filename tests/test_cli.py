"""mml-snake: MML's command line (mode, Hydra overrides, config groups) composing the config Snakemake runs."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import REPO, run_snakemake
from test_e2e import job_counts
from mml_core.cli import main
from mml_core.cli.arguments import split
from mml_core.config import ConfigError, load_config
from mml_core.config.compose import compose_config, config_groups

MML_SNAKE = Path(sys.executable).with_name("mml-snake")
KEYS = {"trainer", "mode", "arch", "task_list", "proj", "allow_gpu"}


def run_cli(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``mml-snake <args>`` in ``workdir``, as a user runs it."""
    proc = subprocess.run([str(MML_SNAKE), *args], cwd=workdir, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ))
    if check and proc.returncode != 0:
        raise AssertionError(f"mml-snake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


# -- the grammar ----------------------------------------------------------------------------------

def test_command_line_splits_mode_overrides_and_snakemake_arguments():
    line = split(["train", "trainer.max_epochs=3", "+optimizer.amsgrad=true", "~cbs.lrm", "arch=timm",
                  "--cores", "2", "task_list=[a,b]", "-n", "--resources", "gpu=2", "mem_mb=100",
                  "mode.cv=false", "--configfile", "a.yaml", "b.yaml", "--report", "r.html", "pp",
                  "--directory=work", "--cfg", "job"], KEYS)
    assert line.mode == "train"
    assert line.overrides == ["trainer.max_epochs=3", "+optimizer.amsgrad=true", "~cbs.lrm", "arch=timm",
                              "task_list=[a,b]", "mode.cv=false"]
    assert line.snakemake == ["--cores", "2", "-n", "--resources", "gpu=2", "mem_mb=100", "--report", "r.html",
                              "--directory", "work"]
    assert line.configfiles == ["a.yaml", "b.yaml"] and line.targets == ["pp"]
    assert line.directory == "work" and line.show_config
    # no mode: the first word is an override; --report without a file keeps Snakemake's default
    line = split(["proj=x", "--report", "seed=3"], KEYS)
    assert line.mode is None and line.overrides == ["proj=x", "seed=3"] and line.snakemake == ["--report"]
    # the console's options (logger plugin mml) and Snakemake's quiet modes pass through
    line = split(["train", "--logger-mml-view", "snakemake", "--quiet", "progress", "proj=x", "--logger-mml-interval",
                  "5"], KEYS)  # fmt: skip
    assert line.overrides == ["proj=x"]
    assert line.snakemake == ["--logger-mml-view", "snakemake", "--quiet", "progress", "--logger-mml-interval", "5"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "optimizer.lr=0.1,0.01"], "'optimizer.lr=0.1,0.01' gives several values: add --multirun"),
        (["train", "-m"], "--multirun needs something to sweep"),
        (["train", "--multirun", "arch=timm,small_cnn"], "sweeps the options of config group arch"),
        (["train", "search_space=example"], "The config has a search_space (sampling.batch_size, optimizer.lr): add --multirun"),
        (["train", "--config", "seed=1"], "write config values as overrides (key=value"),
        (["create", "-n"], "MML mode create is not supported by mml_core: import tasks with"),
        (["fly", "-n"], "Unknown mode 'fly': use one of"),
        (["train", "~trainer.max_epochs"], "'~trainer.max_epochs' removes a key of config/config.yaml"),
        (["train", "trainer.max_epochz=3"], "Unknown config key 'trainer.max_epochz'. Allowed keys under 'trainer'"),
        (["train", "optimizer.amsgrad=true"], "To append to your config use +optimizer.amsgrad=true"),
        (["train", "arch=vit"], "Could not find 'arch/vit'"),
        (["train", "task_list=[a"], "Cannot read the override 'task_list=[a'"),
        (["pp"], "Mode pp writes the tasks preprocessed by a preprocessing group option"),
        (["train", "--configfile", "missing.yaml"], "Experiment file missing.yaml (--configfile) does not exist."),
    ],
    ids=["sweep-without-multirun", "multirun-without-sweep", "group-sweep", "search-space-without-multirun", "config", "mml-mode", "unknown-mode", "remove-required", "unknown-key", "free-key-needs-plus",
         "unknown-option", "bad-grammar", "pp-without-preprocessing", "missing-configfile"],
)
def test_bad_command_lines_stop_with_one_message(argv, message, caplog, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--cfg", "job"]) == 1
    assert message in caplog.text
    assert not (tmp_path / "results").exists()


def test_help_lists_modes_groups_options_and_keys(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for group, options in config_groups().items():
        assert re.search(rf"^  {re.escape(group)} +{re.escape(', '.join(options))}$", text, re.MULTILINE), group
    for line in ("  train    MML's mode=train", "  tl       MML's mode=tl", "  pp       preprocess",
                 "  mode           The scheduler", "extend", "pretrain_task", "limit_train_batches",
                 "allow_gpu", "--cfg job"):
        assert line in text, line


def test_mml_groups_mirror_mml_names():
    groups = config_groups()
    assert {"arch", "augmentations", "callbacks", "lr_scheduler", "mode", "optimizer", "preprocessing", "reuse",
            "sampling", "tasks", "tune"} <= set(groups)
    assert {"train", "tl", "predict", "test"} <= set(groups["mode"])
    # MML's logging/exp_logger=tensorboard; the other loggers as options of the same group
    assert {"csv", "tensorboard", "mlflow"} <= set(groups["logging/exp_logger"])
    assert compose_config(["logging/exp_logger=tensorboard"]).logging.exp_logger == "tensorboard"
    assert {"smp", "timm"} <= set(groups["arch"])
    assert {"loss/cls": ["ce"], "loss/mlcls": ["bce", "ce"], "loss/reg": ["huber"]}.items() <= groups.items()
    assert {"ce", "dice"} <= set(groups["loss/seg"])
    for option in groups["preprocessing"]:  # MML: "this id must match the file name"
        assert compose_config([f"preprocessing={option}"]).preprocessing.id == option


# -- composition ----------------------------------------------------------------------------------

def test_group_selection_plus_keys_lists_and_tags_compose_as_hydra_does():
    cfg = compose_config(["mode=tl", "mode.pretrain_task=sk_digits", "arch=timm", "arch.pretrained=false",
                          "augmentations=baseline256", "lr_scheduler=cosine", "trainer.max_epochs=3",
                          "+optimizer.amsgrad=true", "callbacks=[default,early]", "task_list=[sk_digits,sk_digits+nested?1]",
                          "pivot.tags=+shrink_train?200", "trainer.limit_train_batches=5", "mode.cv=false"])
    assert cfg.mode.scheduler == "tl" and cfg.mode.pretrain_task == "sk_digits"
    assert cfg.mode.subroutines == ["train"] and cfg.mode.nested is True and cfg.mode.store_best is True
    assert cfg.mode.multitask == 0  # mode/train.yaml writes MML's `multitask: false`
    assert cfg.arch.name == "resnet34" and cfg.arch.pretrained is False and cfg.arch.weights is None
    assert cfg.augmentations.cpu.pipeline[0] == {"name": "RandomCrop", "height": 224, "width": 224}
    assert cfg.lr_scheduler.T_max == 3  # ${trainer.max_epochs} resolved after the override
    assert cfg.optimizer.amsgrad is True and set(cfg.cbs) == {"lrm", "early"}
    assert list(cfg.task_list) == ["sk_digits", "sk_digits+nested?1"] and cfg.pivot.tags == "+shrink_train?200"
    assert cfg.trainer.limit_train_batches == 5  # a key of the schema needs no '+'


def test_without_mode_and_overrides_the_cli_composes_the_default_experiment():
    assert compose_config() == load_config()
    quick = REPO / "config" / "quick.yaml"
    assert compose_config(["seed=1"], [quick]) == load_config(["seed=1"], configfiles=[quick])
    # experiment files come after the group options: quick.yaml's mode.cv wins over mode=train's
    assert compose_config(["mode=train"], [quick]).mode.cv is False


def test_mml_values_and_defaults_are_accepted_with_mmls_meaning(caplog):
    cfg = compose_config(["mode.multitask=false", "pivot.name=sk_digits", "tagging.all=''", "allow_gpu=true",
                          "continue=latest", "compile.enable=false", "tta.mode=mean", "reuse=none",
                          "mode.use_blueprint=false", "trainer._target_=lightning.Trainer"])
    assert cfg.mode.multitask == 0 and cfg.tagging.all is None and "allow_gpu" not in cfg and "compile" not in cfg
    assert "Ignoring MML key allow_gpu" in caplog.text
    # the Snakefile reads the same spellings the same way
    assert load_config({"mode": {"multitask": "false"}, "tagging": {"all": "false"}, "continue": "False"}) == load_config()
    scheduler = {"_target_": "mml.core.scripts.schedulers.transfer_scheduler.TransferScheduler"}
    assert load_config({"mode": {"scheduler": scheduler}}).mode.scheduler == "tl"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("allow_gpu=false", "MML key allow_gpu=False is not supported by mml_core: GPUs are used as trainer.accelerator says"),
        ("compile.enable=true", "MML key compile={'enable': True} is not supported by mml_core: torch.compile is not used"),
        ("logging.notifier.slack.on_failure=true", "MML key logging.notifier="),
        ("reuse.blueprint=other", "MML key reuse.blueprint='other' is not supported by mml_core: only reuse.models"),
        ("continue=2024-01-01/12-00-00", "MML key continue='2024-01-01/12-00-00' is not supported by mml_core"),
    ],
)
def test_an_mml_key_mml_core_lacks_is_named_with_what_to_do(override, message):
    with pytest.raises(ConfigError, match="^MML key") as error:
        compose_config([override])
    assert message in str(error.value)


def test_snakemake_names_an_mml_key_the_same_way(tmp_path):
    proc = run_snakemake(tmp_path, "-n", config=["allow_gpu=false"], check=False)
    assert proc.returncode != 0
    assert "MML key allow_gpu=False is not supported by mml_core" in proc.stdout + proc.stderr


# -- end to end ------------------------------------------------------------------------------------

def test_mml_command_line_runs_and_plain_snakemake_then_has_nothing_to_do(tmp_path, demo_data):
    args = ["train", "proj=study", f"data_dir={demo_data}", "mode.nested=false", "mode.cv=false",
            "mode.subroutines=[train,test]", "mode.multitask=false", "augmentations=none", "arch=small_cnn",
            "+optimizer.amsgrad=true", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
            "trainer.limit_val_batches=2", "task_list=[sk_digits,sk_digits_parity]", "allow_gpu=true"]
    run = run_cli(tmp_path, *args, "--cores", "2")
    configs = list((tmp_path / "results/study/configs").glob("*.json"))
    assert len(configs) == 1, configs  # the CLI wrote exactly the file the Snakefile's jobs read
    assert f"config: {configs[0].relative_to(tmp_path)}" in run.stderr
    written = json.loads(configs[0].read_text())
    assert written["optimizer"]["amsgrad"] is True and written["mode"]["multitask"] == 0
    assert json.loads((tmp_path / "results/study/steps/train_fold--sk_digits_0/metrics.json").read_text())[
        "config"] == str(configs[0].relative_to(tmp_path))
    summary = json.loads((tmp_path / "results/study/summary.json").read_text())
    assert summary["steps"] == ["prepare_exp", "train_fold--sk_digits_0", "test_task--sk_digits_None", "finish_exp"]
    # mml-snake's run shows the console of the default profile: a line per step, the table, the closing line
    console = run.stderr.splitlines()
    assert "4 steps to run on 2 cores: prepare_exp 1 · train_fold 1 · test_task 1 · finish_exp 1" in console, run.stderr
    assert any(line.startswith("✓ train_fold--sk_digits_0  ") and "1 epoch" in line for line in console)
    assert any(line.startswith("✓ finish_exp  ") for line in console) and console[-1].startswith("✓ 4 steps done in")
    assert "rule train_fold:" not in run.stderr and "Finished jobid" not in run.stderr
    # its overrides reach Snakemake as one composed file; overrides.yaml names the command that started the run
    recorded = yaml.safe_load((tmp_path / "results/study/overrides.yaml").read_text())
    assert "trainer.max_epochs=1" in recorded["overrides"] and recorded["configfiles"] == [str(configs[0].resolve())]
    assert recorded["command"].startswith("mml-snake train proj=study ") and "--cores 2" in recorded["command"]
    # the same command, and plain snakemake with the written config: the same plan, nothing to do
    assert "Nothing to be done" in run_cli(tmp_path, *args, "-n").stdout
    plain = run_snakemake(tmp_path, "-n", configfiles=(configs[0],))
    assert "Nothing to be done" in plain.stdout
    # a changed value reruns exactly what reads it, whichever way it is given
    dry = run_cli(tmp_path, *args[:-1], "metrics.bootstrap=3", "-n").stdout
    assert job_counts(dry) == {"test_task": 1, "finish_exp": 1, "all": 1}
    # dry runs write no config file
    assert len(list((tmp_path / "results/study/configs").glob("*.json"))) == 1


def test_cfg_job_prints_the_composed_config_and_runs_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "seed=7", "+optimizer.amsgrad=true", "--cores", "2", "--cfg", "job"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["seed"] == 7 and shown["optimizer"]["amsgrad"] is True and shown["mode"]["nested"] is True
    assert not list(tmp_path.iterdir())


def test_multirun_sweeps_as_mml_and_composes_the_sweep_file_a_snakemake_user_writes(tmp_path, demo_data):
    # MML: mml train optimizer.lr=0.01,0.001 sampling.batch_size=choice(16,32) hpo/sampler=grid --multirun
    # (without the mode word, so that the file below needs no copy of config/mode/train.yaml)
    args = ["proj=grid", f"data_dir={demo_data}", "mode.cv=false", "mode.nested=false",
            "trainer.max_epochs=1", "optimizer.lr=0.01,0.001", "sampling.batch_size=choice(16,32)",
            "hpo/sampler=grid", "--multirun"]
    composed = run_cli(tmp_path, *args, "--cfg", "job").stdout
    cfg = yaml.safe_load(composed)
    assert cfg["search_space"] == {"optimizer.lr": "choice(0.01,0.001)", "sampling.batch_size": "choice(16,32)"}
    assert cfg["hpo"]["sampler"] == "grid"
    # the same sweep as a plain snakemake user's file: the same config
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "proj": "grid", "data_dir": str(demo_data), "mode": {"cv": False, "nested": False},
        "trainer": {"max_epochs": 1}, "hpo": {"sampler": "grid"},
        "search_space": {"optimizer.lr": "choice(0.01,0.001)", "sampling.batch_size": "choice(16,32)"},
    }))  # fmt: skip
    assert OmegaConf.to_container(load_config(configfiles=[tmp_path / "sweep.yaml"])) == cfg
    dry = run_cli(tmp_path, *args, "-n").stdout
    assert job_counts(dry)["train_fold"] == 4 and job_counts(dry)["sweep_summary"] == 1
    for lr, bs in itertools.product(("0.01", "0.001"), (16, 32)):
        assert f"results/grid/trials/optimizer.lr={lr}+sampling.batch_size={bs}/steps/train_fold" in dry


def test_pp_mode_runs_the_preprocessing_target(tmp_path, demo_data):
    dry = run_cli(tmp_path, "pp", f"data_dir={demo_data}", "preprocessing=size224", "-n").stdout
    assert job_counts(dry) == {"preprocess": 1, "pp": 1}
    assert f"{demo_data}/PREPROCESSED/size224/DSET_sklearn_digits/TASK_sk_digits.json" in dry
    # a dry run writes no config (only the data fingerprints every plan reads)
    assert not (tmp_path / "results" / "default" / "configs").exists()
