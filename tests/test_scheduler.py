"""AbstractBaseScheduler's seed API, the TrainingScheduler schedule, and the schedule -> plan translation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mml_core.config import load_config
from mml_core.schedulers import AbstractBaseScheduler, MisconfigurationError, TrainingScheduler, build_scheduler
from mml_core.schedulers.plan import Plan


class SeedStyleScheduler(AbstractBaseScheduler):
    """A custom scheduler written as MML's docs show it: no dependencies declared."""

    def __init__(self, cfg):
        super().__init__(cfg, available_subroutines=["xyz", "other"])
        self.hook_calls = []

    def create_routine(self):
        if "xyz" in self.subroutines:
            for task in self.cfg.task_list:
                self.commands.append(self.my_step)
                self.params.append([task])

    def my_step(self, task):
        self.step_results["task"] = task

    def after_preparation_hook(self):
        self.hook_calls.append("after_preparation")

    def before_finishing_hook(self):
        self.hook_calls.append("before_finishing")
        self.return_value = 1.5


@pytest.fixture
def cfg(demo_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return load_config({"data_dir": str(demo_data), "trainer": {"max_epochs": 1}})


def seed_cfg(cfg, subroutines=("xyz",)):
    cfg.mode.subroutines = list(subroutines)
    cfg.task_list = ["sk_digits", "sk_digits_parity"]
    cfg.pivot.name = None
    return cfg


def test_subroutines_are_validated(cfg):
    for bad, message in [([], "is empty"), (["train", "fly"], r"Unknown subroutine\(s\) \['fly'\]")]:
        cfg.mode.subroutines = bad
        with pytest.raises(MisconfigurationError, match=message):
            TrainingScheduler(cfg)
    cfg.mode.subroutines = "train"
    with pytest.raises(MisconfigurationError, match="must be a list"):
        TrainingScheduler(cfg)


def test_base_class_is_abstract(cfg):
    with pytest.raises(TypeError, match="create_routine"):
        AbstractBaseScheduler(cfg, ["train"])


def test_create_routine_brackets_with_prepare_and_finish(cfg):
    scheduler = SeedStyleScheduler(seed_cfg(cfg))
    names = [c.__name__ for c in scheduler.commands]
    assert names == ["prepare_exp", "my_step", "my_step", "finish_exp"]
    assert scheduler.params == [[], ["sk_digits"], ["sk_digits_parity"], []]
    assert scheduler.step_names == ["prepare_exp", "my_step--sk_digits", "my_step--sk_digits_parity", "finish_exp"]


def test_training_schedule_cv_and_single_fold(cfg):
    scheduler = TrainingScheduler(cfg)
    assert scheduler.step_names == (
        ["prepare_exp"]
        + [f"train_fold--sk_digits_{f}" for f in range(5)]
        + [f"predict_fold--sk_digits_{f}_None" for f in range(5)]
        + ["test_task--sk_digits_None", "finish_exp"]
    )
    cfg.mode.cv = False
    cfg.mode.subroutines = ["train", "test"]
    assert TrainingScheduler(cfg).step_names == [
        "prepare_exp", "train_fold--sk_digits_0", "test_task--sk_digits_None", "finish_exp"
    ]


def test_training_scheduler_needs_pivot_and_known_tasks(cfg):
    cfg.pivot.name = None
    with pytest.raises(MisconfigurationError, match="needs a pivot task"):
        TrainingScheduler(cfg)
    cfg.pivot.name = "sk_digitz"
    with pytest.raises(LookupError, match="Unknown task 'sk_digitz'"):
        TrainingScheduler(cfg)


def test_tagging_and_pivot_handling_follow_mml(cfg):
    cfg.task_list = ["sk_digits_parity", "sk_digits_parity"]
    cfg.tagging.variants = ["+identity", "+duplicate?9"]
    cfg.pivot.tags = "+identity"
    scheduler = TrainingScheduler(cfg)
    assert scheduler.pivot == "sk_digits+identity"
    assert list(scheduler.cfg.task_list) == [
        "sk_digits_parity+duplicate?1", "sk_digits_parity+duplicate?2",
        "sk_digits_parity+duplicate?9+duplicate?1", "sk_digits_parity+duplicate?9+duplicate?2",
        "sk_digits+identity",
    ]
    cfg.tagging.all = "identity"
    with pytest.raises(MisconfigurationError, match='must start with "\\+"'):
        TrainingScheduler(cfg)


def test_set_active_naming_and_checkpoint_dir_are_stable(cfg):
    scheduler = TrainingScheduler(cfg)
    scheduler.set_active_naming(2)
    assert scheduler.active_step_naming == "train_fold--sk_digits_1"
    assert str(scheduler.get_checkpoints_dir()) == "results/default/checkpoints/train_fold--sk_digits_1"
    again = TrainingScheduler(cfg)
    again.set_active_naming(2)
    assert again.get_checkpoints_dir() == scheduler.get_checkpoints_dir()


def test_compare_schedule_entries(cfg):
    scheduler = TrainingScheduler(cfg)
    entry = scheduler.schedule_entry(1)
    assert entry == "method: train_fold / ['sk_digits', 0]"
    compare = AbstractBaseScheduler.compare_schedule_entries
    assert compare(entry, "method: train_fold / ['sk_digits',0]\n")
    assert not compare(entry, scheduler.schedule_entry(2))
    assert not compare(entry, "method: predict_fold / ['sk_digits', 0]")
    # MML's lines may hold bound-method reprs with memory addresses
    assert compare("method: <bound x object at 0x7f00> / [1]", "method: <bound x object at 0x7e11> / [1]")


def test_get_struct_and_highlight_text(cfg):
    scheduler = TrainingScheduler(cfg)
    assert scheduler.get_struct("sk_digits").num_classes == 10
    assert scheduler.highlight_text("x") != "x" and "x" in scheduler.highlight_text("x")
    cfg.logging.highlight_text = False
    assert TrainingScheduler(cfg).highlight_text("x") == "x"


def test_duplicate_steps_are_refused(cfg):
    class Twice(SeedStyleScheduler):
        def create_routine(self):
            for _ in range(2):
                self.commands.append(self.my_step)
                self.params.append(["sk_digits"])

    with pytest.raises(MisconfigurationError, match="more than once"):
        Twice(seed_cfg(cfg))


def test_hooks_run_in_prepare_and_finish(cfg, tmp_path):
    scheduler = SeedStyleScheduler(seed_cfg(cfg))
    scheduler.prepare_exp()
    assert (tmp_path / "results/default/tasks.json").is_file()
    assert (tmp_path / "results/default/schedule.txt").read_text().splitlines()[1] == "method: my_step / ['sk_digits']"
    scheduler.finish_exp()
    assert scheduler.hook_calls == ["after_preparation", "before_finishing"]
    import json

    assert json.loads((tmp_path / "results/default/summary.json").read_text())["return_value"] == 1.5


def test_plan_of_training_scheduler_is_parallel(cfg):
    plan = Plan(TrainingScheduler(cfg))
    names = plan.names
    assert plan.dependencies(names.index("train_fold--sk_digits_3")) == []
    assert plan.dependencies(names.index("predict_fold--sk_digits_3_None")) == [names.index("train_fold--sk_digits_3")]
    assert plan.dependencies(names.index("test_task--sk_digits_None")) == list(range(1, 6))
    assert plan.dependencies(len(names) - 1) == list(range(len(names) - 1))
    # generated rules for the kinds between prepare_exp and finish_exp, which have rules of their own
    kinds = {r.kind: r for r in plan.rules()}
    assert list(kinds) == ["train_fold", "predict_fold", "test_task"]
    assert kinds["train_fold"].output == "results/default/steps/{step}/metrics.json"
    assert re.fullmatch(kinds["train_fold"].names, "train_fold--sk_digits_2")
    assert not re.fullmatch(kinds["train_fold"].names, "predict_fold--sk_digits_2_None")
    assert plan.metrics_path(0) == "results/default/steps/prepare_exp/metrics.json"
    assert plan.finish_outputs()["summary"] == "results/default/summary.json"
    assert kinds["train_fold"].resources["mem_mb"] == 4000 and kinds["test_task"].threads == 1
    assert plan.step("train_fold--sk_digits_2") == 3


def test_params_carry_the_config_slice_a_step_reads(cfg):
    plan = Plan(TrainingScheduler(cfg))
    train = plan.params("train_fold")
    assert train["trainer"]["max_epochs"] == 1 and "optimizer" in train and "proj" not in train
    test = plan.params("test_task")
    assert "optimizer" not in test and "seed" not in test
    assert set(plan.params("prepare_exp")) == {"data_dir", "preprocessing", "task_list"}


def test_plan_of_seed_style_scheduler_keeps_schedule_order(cfg):
    plan = Plan(SeedStyleScheduler(seed_cfg(cfg)))
    assert [plan.dependencies(i) for i in range(4)] == [[], [0], [1], [0, 1, 2]]
    # each step reads only the task named in its params: its data fingerprint is the step's input
    assert plan.inputs(2)["data"] == ["results/default/fingerprints/sk_digits_parity.json"]
    assert plan.task_files["sk_digits_parity"] == Path(cfg.data_dir) / "RAW/DSET_sklearn_digits/TASK_sk_digits_parity.json"


def test_plan_scales_to_ten_thousand_steps(cfg):
    class Long(SeedStyleScheduler):
        def create_routine(self):
            for i in range(10_000):
                self.commands.append(self.my_step)
                self.params.append([i])

    plan = Plan(Long(seed_cfg(cfg)))
    assert len(plan.names) == 10_002
    assert plan.inputs(5000)["deps"] == [plan.metrics_path(4999)]
    assert len(plan.inputs(10_001)["deps"]) == 10_001


def test_build_scheduler_by_name_and_import_path(cfg):
    assert type(build_scheduler(cfg)) is TrainingScheduler
    cfg.mode.scheduler = "test_scheduler:SeedStyleScheduler"
    cfg = seed_cfg(cfg)
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    try:
        assert type(build_scheduler(cfg)).__name__ == "SeedStyleScheduler"
    finally:
        sys.path.remove(str(Path(__file__).parent))
    cfg.mode.scheduler = "nope"
    with pytest.raises(MisconfigurationError, match="Unknown mode.scheduler 'nope'"):
        build_scheduler(cfg)


def test_config_is_read_only_once_the_schedule_stands(cfg):
    from omegaconf.errors import ReadonlyConfigError

    scheduler = TrainingScheduler(cfg)
    with pytest.raises(ReadonlyConfigError):
        scheduler.cfg.trainer.max_epochs = 3
    # the scheduler holds its own copy: the caller's config stays the caller's
    cfg.trainer.max_epochs = 7
    assert scheduler.cfg.trainer.max_epochs == 1 and scheduler.resolved_cfg["trainer"]["max_epochs"] == 1
    assert scheduler.job_config["trainer"]["max_epochs"] == 1
