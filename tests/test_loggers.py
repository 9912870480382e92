"""Experiment loggers of ``logging.exp_logger``: each writes where it should, with the whole config as
hyperparameters and names a person can read (experiment = proj, run = step)."""

from __future__ import annotations

import os

import pytest
import yaml

from mml_core.config import ConfigError, load_config
from mml_core.schedulers import TrainingScheduler
from mml_core.training.loggers import MLFLOW_FILE_STORE_ENV, logger_specs

STEP = "train_fold--sk_digits_0"
TINY = {"trainer": {"max_epochs": 1, "limit_train_batches": 3, "limit_val_batches": 2, "enable_progress_bar": False}}


@pytest.fixture
def train(demo_data, tmp_path, monkeypatch):
    """Train fold 0 of sk_digits for one short epoch with ``exp_logger``; returns the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(MLFLOW_FILE_STORE_ENV, raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def run(exp_logger, proj: str = "study"):
        cfg = load_config({"data_dir": str(demo_data), "proj": proj, "logging": {"exp_logger": exp_logger}, **TINY})
        scheduler = TrainingScheduler(cfg)
        scheduler.set_active_naming(1)
        scheduler.train_fold("sk_digits", 0)
        return tmp_path

    return run


def test_csv_logger_writes_metrics_and_the_whole_config(train):
    workdir = train("csv")
    run = workdir / "results/study/logs" / STEP / "version_0"
    hparams = yaml.safe_load((run / "hparams.yaml").read_text())
    assert hparams["step"] == STEP and hparams["proj"] == "study"
    assert hparams["trainer.max_epochs"] == 1 and hparams["arch.name"] == "small_cnn" and hparams["seed"] == 42
    assert hparams["sampling.batch_size"] == 64 and hparams["optimizer._target_"] == "torch.optim.Adam"
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"val/sk_digits/loss", "val/sk_digits/acc", "train/sk_digits/acc", "epoch"} <= set(header)


def test_tensorboard_logger_has_the_config_as_hparams(train):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    workdir = train("tensorboard")
    run = workdir / "results/study/tensorboard" / STEP / "version_0"
    events = EventAccumulator(str(run), size_guidance={"tensors": 0})
    events.Reload()
    assert "val/sk_digits/loss" in events.Tags()["scalars"]
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["step"].string_value == STEP and hparams["trainer.max_epochs"].number_value == 1
    assert hparams["arch.name"].string_value == "small_cnn" and hparams["sampling.batch_size"].number_value == 64
    assert not (workdir / "results/study/logs" / STEP).exists()  # csv is not on unless asked for


def test_mlflow_logger_works_offline_with_readable_names(train):
    from mlflow.tracking import MlflowClient

    # nothing set up: no server, no database, no MLFLOW_ALLOW_FILE_STORE in the environment
    workdir = train("mlflow")
    client = MlflowClient(tracking_uri=f"file:{workdir / 'results/mlruns'}")
    experiment = client.get_experiment_by_name("study")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == STEP and run.info.status == "FINISHED"
    assert run.data.params["trainer.max_epochs"] == "1" and run.data.params["step"] == STEP
    assert run.data.tags["proj"] == "study"
    assert "val/sk_digits/loss" in run.data.metrics


def test_several_loggers_at_once_and_a_second_project_in_the_same_store(train):
    from mlflow.tracking import MlflowClient

    workdir = train(["csv", "tensorboard", {"_target_": "lightning.pytorch.loggers.MLFlowLogger"}])
    train(["mlflow"], proj="other")
    assert (workdir / "results/study/logs" / STEP / "version_0/metrics.csv").is_file()
    assert list((workdir / "results/study/tensorboard" / STEP / "version_0").glob("events.out.tfevents.*"))
    client = MlflowClient(tracking_uri=f"file:{workdir / 'results/mlruns'}")
    names = sorted(e.name for e in client.search_experiments())
    assert names == ["other", "study"]  # one experiment per project, no stray default one
    assert os.environ[MLFLOW_FILE_STORE_ENV] == "true"


def test_logger_choices_and_mmls_single_spec():
    assert logger_specs(None) == []
    assert logger_specs("csv") == [{"_target_": "pytorch_lightning.loggers.CSVLogger"}]
    spec = {"_target_": "lightning.pytorch.loggers.tensorboard.TensorBoardLogger", "save_dir": "tb"}
    assert logger_specs(spec) == [spec]  # MML's logging/exp_logger form
    assert len(logger_specs(["csv", "tensorboard", "mlflow"])) == 3
    with pytest.raises(ConfigError, match=r"logging.exp_logger.1' must be one of \['csv', 'tensorboard', 'mlflow'\]"):
        load_config({"logging": {"exp_logger": ["csv", "wandb"]}})
