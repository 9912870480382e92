# Build the schedule from the validated config. Bad config stops here with one clear message.
from snakemake.exceptions import WorkflowError
from snakemake_interface_executor_plugins.settings import ExecMode

from mml_core.config import ConfigError
from mml_core.jobs.locks import check_writable, clear_stale_locks
from mml_core.schedulers.plan import Plan
from mml_core.schedulers.provenance import stale_results_message
from mml_core.schedulers.registry import build_scheduler
from mml_core.tasks import TagError, TaskFileError, TaskNotFoundError

try:
    PLAN = Plan(build_scheduler(config))
except (ConfigError, TaskNotFoundError, TaskFileError, TagError) as exc:
    raise WorkflowError(f"mml_core: {exc}") from None

_stale = PLAN.results_without_records()
if _stale:
    raise WorkflowError(f"mml_core: {stale_results_message(_stale, PLAN.root)}")

# Snakemake resolves dependency chains recursively; a long sequential schedule needs headroom.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 20 * len(PLAN.names) + 2000))

# Every step runs as `python -m mml_core.jobs.runner` with the interpreter running Snakemake (with
# mml_core installed). `exec`: signals reach the job itself, not a shell that would orphan it. The
# job reads the config from the file PLAN.write_run_config() writes before the first job runs.
RUN_STEP = (
    f"exec {sys.executable} -m mml_core.jobs.runner --config {PLAN.job_config} "
    "--threads {threads} --gpus {resources.gpu} --step "
)

# A run killed with SIGKILL leaves Snakemake's lock behind; only the main process (not cluster
# jobs, which re-read this file) clears locks that no snakemake on this host holds any more.
if workflow.exec_mode == ExecMode.DEFAULT:
    clear_stale_locks(Path.cwd())


onstart:
    # only when jobs are about to run (not for -n): fail before any work if results are read-only;
    # then the config the jobs read, and config.yaml/overrides.yaml of this run beside the results
    check_writable(PLAN.root)
    PLAN.write_run_config(workflow.config_settings.configfiles, workflow.config_settings.config)
