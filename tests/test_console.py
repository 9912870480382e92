"""The console (Snakemake's logger plugin ``mml``): what it prints for Snakemake's records.

The handler gets records as Snakemake builds them (event and fields as extra attributes) and the
progress records a job writes; the end-to-end runs (test_e2e, test_bad_inputs) check the console
of real runs.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

# before any capsys: snakemake.shell keeps the sys.stdout of its first import for the shell jobs it
# starts, and the handler imports it; pytest's capsys stream has no file descriptor to give them
import snakemake.shell  # noqa: F401
from snakemake_interface_logger_plugins.common import LogEvent
from snakemake_interface_logger_plugins.tests import MockOutputSettings

from mml_core.io import atomic_write_json
from mml_core.jobs.console import LogHandler, LogHandlerSettings, last_log_line
from mml_core.progress import start_progress, update_progress
from mml_core.schedulers.steps import StepLayout


def record(event: LogEvent | None, msg: str = "", level: int = logging.INFO, pathname: str = "workflow.py",
           **fields) -> logging.LogRecord:  # fmt: skip
    made = logging.LogRecord("snakemake", level, pathname, 1, msg, (), None)
    if event is not None:
        made.event = event
    for key, value in fields.items():
        setattr(made, key, value)
    return made


class Captured:
    """What the handler wrote to stderr so far (pytest's capture)."""

    def __init__(self, capsys: pytest.CaptureFixture) -> None:
        self.capsys = capsys
        self.text = ""

    def getvalue(self) -> str:
        self.text += self.capsys.readouterr().err
        return self.text


@pytest.fixture
def console(tmp_path, monkeypatch, capsys):
    """A handler of the given view writing to stderr, in a working directory of its own."""
    monkeypatch.chdir(tmp_path)

    def make(dryrun: bool = False, view: str = "lines", quiet: tuple[str, ...] = ()) -> tuple[LogHandler, Captured]:
        from snakemake.settings.enums import Quietness

        settings = MockOutputSettings()
        settings.dryrun = dryrun
        settings.nocolor = True
        settings.quiet = {Quietness.parse_choice(q) for q in quiet}
        handler = LogHandler(common_settings=settings, settings=LogHandlerSettings(view=view, interval=0.0))
        return handler, Captured(capsys)

    return make


def job_info(jobid: int, step: str, rule: str = "train_fold") -> logging.LogRecord:
    log = str(StepLayout.of("p").log(step))
    return record(LogEvent.JOB_INFO, f" Rule: {rule}, Jobid: {jobid}", jobid=jobid, rule_name=rule, rule_msg=None,
                  output=[f"results/p/steps/{step}/metrics.json"], log=[log], wildcards={"step": step},
                  input=[], reason="Missing output files", local=True, is_checkpoint=False, benchmark=None,
                  priority=0, threads=1, resources={}, indent=False, is_handover=False, shellcmd="exec python ...")


def step_record(step: str, wall_time_s: float) -> None:
    """The finished step's metrics.json as far as the console reads it: its wall time."""
    atomic_write_json(StepLayout.of("p").metrics(step), {"step": step, "provenance": {"wall_time_s": wall_time_s}})


def test_a_run_shows_progress_results_and_the_table_and_none_of_snakemakes_blocks(console):
    handler, out = console()
    handler.emit(record(LogEvent.WORKFLOW_STARTED, "Workflow has started!"))
    handler.emit(record(None, "Building DAG of jobs..."))
    handler.emit(record(LogEvent.RESOURCES_INFO, "Provided cores: 2", cores=2))
    handler.emit(record(LogEvent.RUN_INFO, "Job stats: ...", stats={"train_fold": 1, "finish_exp": 1, "all": 1,
                                                                     "total": 3}))
    step = "train_fold--t_0"
    progress = StepLayout.of("p").progress(step)
    start_progress(progress, step)
    handler.emit(job_info(1, step))
    handler.emit(record(LogEvent.SHELLCMD, "Shell command: exec python ...", shellcmd="exec python ..."))
    update_progress(progress, phase="train", epoch=2, max_epochs=8, batch=3, batches=23, eta_s=14.0,
                    metrics={"train/loss": 0.5, "train/t/loss": 0.41, "val/t/loss": 0.39, "val/t/acc": 0.93})
    handler.refresh()
    update_progress(progress, result="8 epochs · val loss 0.0812")
    step_record(step, 12.3)
    handler.emit(record(LogEvent.JOB_FINISHED, "Finished jobid: 1", job_id=1))
    handler.emit(job_info(0, "finish_exp", rule="finish_exp"))
    start_progress(StepLayout.of("p").progress("finish_exp"), "finish_exp")
    update_progress(StepLayout.of("p").progress("finish_exp"),
                    result="summary in results/p/summary.md\n     t (5 folds)\nacc  0.9828 ± 0.0085")
    step_record("finish_exp", 2.0)
    handler.emit(record(LogEvent.JOB_FINISHED, "Finished jobid: 0", job_id=0))
    handler.emit(record(LogEvent.PROGRESS, done=3, total=3))
    handler.emit(record(None, "Complete log(s): .snakemake/log/x.log"))
    handler.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "2 steps to run on 2 cores: train_fold 1 · finish_exp 1"
    assert lines[1] == f"▶ {step}"
    assert lines[2] == (f"  {step}  epoch 2/8 · batch 3/23 · train loss 0.410 · val loss 0.390 · val acc 0.930 · "
                        "ETA 14.0 s")  # fmt: skip
    assert lines[3] == f"✓ {step}  12.3 s  8 epochs · val loss 0.0812"
    assert lines[5] == "✓ finish_exp  2.0 s  summary in results/p/summary.md"
    assert lines[6:8] == ["         t (5 folds)", "    acc  0.9828 ± 0.0085"]
    assert lines[8].startswith("✓ 2 steps done in ")
    assert len(lines) == 9
    for noise in ("Workflow has started", "Building DAG", "Shell command", "Jobid", "Complete log"):
        assert noise not in out.getvalue()


def test_a_failed_step_is_its_error_line_and_its_log(console):
    handler, out = console()
    handler.emit(record(LogEvent.RUN_INFO, "Job stats", stats={"train_fold": 2, "total": 2}))
    handler.emit(job_info(1, "train_fold--t_0"))
    progress = StepLayout.of("p").progress("train_fold--t_0")
    start_progress(progress, "train_fold--t_0")
    update_progress(progress, error="FloatingPointError: The training loss is nan. Lower optimizer.lr")
    # Snakemake's exception comes first, then the job's error record
    handler.emit(record(LogEvent.ERROR, "RuleException:\nCalledProcessError ... --config results/p/configs/x.json",
                        level=logging.ERROR, exception="RuleException"))
    handler.emit(record(LogEvent.JOB_ERROR, "Error in rule train_fold, jobid: 1", level=logging.ERROR, jobid=1,
                        rule_name="train_fold", rule_msg=None, log=[str(StepLayout.of("p").log("train_fold--t_0"))]))
    handler.emit(record(None, "Exiting because a job execution failed. Look above for error messages",
                        level=logging.ERROR))
    handler.emit(record(LogEvent.ERROR, "WorkflowError:\nAt least one job did not complete successfully.",
                        level=logging.ERROR, exception="WorkflowError"))
    handler.close()
    assert out.getvalue().splitlines()[2:] == [
        "✗ train_fold--t_0 failed: FloatingPointError: The training loss is nan. Lower optimizer.lr",
        "  log: results/p/logs/train_fold--t_0.log",
        out.getvalue().splitlines()[-1],
    ]
    assert out.getvalue().splitlines()[-1].startswith("✗ 1 of 2 steps failed (train_fold--t_0) after ")
    assert "--config" not in out.getvalue() and "RuleException" not in out.getvalue()


def test_a_killed_job_shows_the_last_line_of_its_log_and_a_retry_its_attempt(console, tmp_path):
    handler, out = console()
    handler.emit(record(LogEvent.RUN_INFO, "Job stats", stats={"train_fold": 1, "total": 1}))
    handler.emit(job_info(3, "train_fold--t_0"))
    log = StepLayout.of("p").log("train_fold--t_0")
    log.parent.mkdir(parents=True)
    log.write_text("INFO epoch 1/8 done\nEpoch 1:  40%|####      | 2/5 [00:01<00:01, 2.0it/s]\r"
                   "Epoch 1:  60%|######    | 3/5 [00:01<00:01, 2.0it/s]\n")
    handler.emit(record(None, "Job 3 has been submitted with SLURM jobid 812 (log: x.log).",
                        pathname="/site-packages/snakemake_executor_plugin_slurm/__init__.py"))
    handler.emit(record(LogEvent.JOB_ERROR, "Error in rule train_fold, jobid: 3", level=logging.ERROR, jobid=3,
                        rule_name="train_fold", rule_msg="SLURM-job '812' failed, SLURM status is: 'CANCELLED'.",
                        log=[str(log), ".snakemake/slurm_logs/rule_train_fold/812.log"]))
    handler.emit(job_info(3, "train_fold--t_0"))
    handler.close()
    lines = out.getvalue().splitlines()
    assert lines[2] == "Job 3 has been submitted with SLURM jobid 812 (log: x.log)."
    assert lines[3] == "✗ train_fold--t_0 failed: INFO epoch 1/8 done"
    assert lines[4] == "  SLURM-job '812' failed, SLURM status is: 'CANCELLED'."
    assert lines[5:7] == [f"  log: {log}", "  log: .snakemake/slurm_logs/rule_train_fold/812.log"]
    assert lines[7] == "↻ train_fold--t_0  attempt 2"
    # the retry was still running when the run stopped
    assert lines[8].startswith("■ stopped after") and "(unfinished: train_fold--t_0)" in lines[8]


def test_a_job_that_could_not_start_shows_snakemakes_reason(console):
    handler, out = console()
    handler.emit(record(LogEvent.RUN_INFO, "Job stats", stats={"prepare_exp": 1, "total": 1}))
    handler.emit(job_info(2, "prepare_exp", rule="prepare_exp"))
    handler.emit(record(LogEvent.ERROR, 'RuleException:\nOSError in file "experiment.smk", line 27:\nToo many open '
                        'files\n  File "subprocess.py", line 992', level=logging.ERROR, exception="RuleException"))
    handler.emit(record(LogEvent.JOB_ERROR, "Error in rule prepare_exp, jobid: 2", level=logging.ERROR, jobid=2,
                        rule_name="prepare_exp", rule_msg=None, log=[str(StepLayout.of("p").log("prepare_exp"))]))
    handler.close()
    assert 'prepare_exp failed: OSError in file "experiment.smk", line 27: Too many open files' in out.getvalue()


def test_without_jobs_snakemake_speaks_for_itself(console):
    handler, out = console()
    handler.emit(record(LogEvent.WORKFLOW_STARTED, "Workflow has started!"))
    handler.emit(record(None, "Building DAG of jobs..."))
    handler.emit(record(None, "Nothing to be done (all requested files are present and up to date)."))
    handler.close()
    assert out.getvalue().splitlines() == [
        "Building DAG of jobs...", "Nothing to be done (all requested files are present and up to date).",
    ]


def test_an_error_while_planning_keeps_snakemakes_order(console):
    handler, out = console()
    handler.emit(record(None, "Config file config/config.yaml is extended by additional config"))
    handler.emit(record(LogEvent.ERROR, "WorkflowError in file common.smk, line 15:\nmml_core: Unknown config key",
                        level=logging.ERROR, exception="WorkflowError"))
    handler.close()
    text = out.getvalue()
    assert text.index("is extended") < text.index("mml_core: Unknown config key")


@pytest.mark.parametrize(("dryrun", "view"), [(True, "live"), (False, "snakemake")])
def test_dry_runs_and_the_snakemake_view_print_snakemakes_own_output(console, dryrun, view):
    handler, out = console(dryrun=dryrun, view=view)
    handler.emit(record(LogEvent.RUN_INFO, "Job stats:\njob  count", stats={"train_fold": 1, "total": 1}))
    handler.emit(job_info(1, "train_fold--t_0"))
    handler.close()
    assert "Job stats:" in out.getvalue() and "rule train_fold:" in out.getvalue()
    assert "wildcards: step=train_fold--t_0" in out.getvalue()


def test_last_log_line_skips_progress_bars(tmp_path):
    log = tmp_path / "x.log"
    assert last_log_line(log) == ""
    log.write_text("first\nValueError: bad\n\nTraining: 5/5 [00:01<00:00, 3.1it/s]\r   \n")
    assert last_log_line(log) == "ValueError: bad"


def test_the_plugin_is_found_by_snakemake():
    from snakemake_interface_logger_plugins.registry import LoggerPluginRegistry

    plugin = LoggerPluginRegistry().get_plugin("mml")
    assert plugin.log_handler is LogHandler and plugin.settings_cls is LogHandlerSettings
    assert Path(sys.modules[LogHandler.__module__].__file__).name == "console.py"


def test_quiet_progress_counts_the_steps_whose_outputs_exist_and_quiet_all_shows_only_a_failure(console):
    # --quiet (rules and progress): Snakemake announces no finished job
    handler, out = console(quiet=("rules", "progress"))
    handler.emit(record(LogEvent.RUN_INFO, "Job stats", stats={"train_fold": 2, "total": 2}))
    handler.emit(job_info(1, "train_fold--t_0"))
    handler.emit(job_info(2, "train_fold--t_1"))
    step_record("train_fold--t_0", 1.0)
    handler.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "2 steps to run: train_fold 2"
    assert lines[1].startswith("■ stopped after") and "1 of 2 steps done (unfinished: train_fold--t_1)" in lines[1]
    assert len(lines) == 2

    handler, out = console(quiet=("all",))
    handler.emit(record(LogEvent.RUN_INFO, "Job stats", stats={"train_fold": 1, "total": 1}))
    handler.emit(job_info(1, "train_fold--t_0"))
    step_record("train_fold--t_0", 1.0)
    handler.close()
    assert out.getvalue() == ""

    handler, out = console(quiet=("all",))
    handler.emit(record(LogEvent.RUN_INFO, "Job stats", stats={"train_fold": 1, "total": 1}))
    handler.emit(job_info(3, "train_fold--t_2"))
    update_progress(StepLayout.of("p").progress("train_fold--t_2"), error="ValueError: bad")
    handler.emit(record(LogEvent.JOB_ERROR, "Error in rule train_fold, jobid: 3", level=logging.ERROR, jobid=3,
                        rule_name="train_fold", rule_msg=None, log=[str(StepLayout.of("p").log("train_fold--t_2"))]))
    handler.close()
    assert out.getvalue().splitlines()[0] == "✗ train_fold--t_2 failed: ValueError: bad"
    assert out.getvalue().splitlines()[-1].startswith("✗ 1 of 1 steps failed (train_fold--t_2)")
