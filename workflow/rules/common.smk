# Build the schedule from the validated config. Bad config stops here with one clear message.
from snakemake.exceptions import WorkflowError
from snakemake_interface_executor_plugins.settings import ExecMode

from mml_core.config import ConfigError
from mml_core.jobs.locks import WorkdirLocked, check_writable, guard_lock, record_holder
from mml_core.schedulers.plan import Plan
from mml_core.schedulers.provenance import stale_results_message
from mml_core.schedulers.registry import build_scheduler
from mml_core.tasks import TagError, TaskFileError, TaskNotFoundError

# Never two runs writing the same results: the lock of a run that is provably gone is removed, any
# other lock stops here, before Snakemake locks the directory (jobs/locks.py). Only the main process
# (cluster jobs re-read this file). Snakemake parses this file for --unlock too, and tells it nothing
# about the command but its arguments.
if workflow.exec_mode == ExecMode.DEFAULT and "--unlock" not in sys.argv:
    try:
        guard_lock(Path.cwd(), dryrun=workflow.output_settings.dryrun)
    except WorkdirLocked as exc:
        raise WorkflowError(f"mml_core: {exc}") from None

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
# job reads the config from the file PLAN.write_job_config() writes before the first job runs.
RUN_STEP = (
    f"exec {sys.executable} -m mml_core.jobs.runner --config {PLAN.job_config} "
    "--threads {threads} --gpus {resources.gpu} --step "
)


onstart:
    # only when jobs are about to run (not for -n), once Snakemake holds the lock
    record_holder(Path.cwd())
    # fail before any work if results are read-only
    check_writable(PLAN.root)
    PLAN.write_job_config()
