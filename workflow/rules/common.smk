# Build the schedule from the validated config. Bad config stops here with one clear message.
from snakemake.exceptions import WorkflowError
from snakemake_interface_executor_plugins.settings import ExecMode

from mml_core.config import ConfigError
from mml_core.jobs.locks import check_writable, clear_stale_locks
from mml_core.schedulers.provenance import stale_results_message
from mml_core.sweeps import build_plan
from mml_core.tasks import TagError, TaskFileError, TaskNotFoundError

try:
    # one experiment (Plan), or the trials of a sweep (SweepPlan, see workflow/rules/sweep.smk); only
    # the main process asks an Optuna study for trials, never a cluster job re-reading this file
    PLAN = build_plan(config, may_ask=workflow.exec_mode == ExecMode.DEFAULT, checkpoints=checkpoints)
except (ConfigError, TaskNotFoundError, TaskFileError, TagError) as exc:
    raise WorkflowError(f"mml_core: {exc}") from None

_stale = PLAN.results_without_records()
if _stale:
    raise WorkflowError(f"mml_core: {stale_results_message(_stale, PLAN.root)}")

# Snakemake resolves dependency chains recursively; a long sequential schedule needs headroom.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 20 * len(PLAN.names) + 2000))

# Every step runs as `python -m mml_core.jobs.runner` with the interpreter running Snakemake (with
# mml_core installed). `exec`: signals reach the job itself, not a shell that would orphan it. The
# job reads the config from the file PLAN.write_job_config() writes before the first job runs (in a
# sweep, each trial's: the rules add the param PLAN.job_params names in the shell line).
RUN_STEP = (
    f"exec {sys.executable} -m mml_core.jobs.runner --config {PLAN.job_config_arg} "
    "--threads {threads} --gpus {resources.gpu} --step "
)

# A run killed with SIGKILL leaves Snakemake's lock behind; only the main process (not cluster
# jobs, which re-read this file) clears locks that no snakemake on this host holds any more.
if workflow.exec_mode == ExecMode.DEFAULT:
    clear_stale_locks(Path.cwd())


onstart:
    # only when jobs are about to run (not for -n): fail before any work if results are read-only
    check_writable(PLAN.root)
    PLAN.write_job_config()
