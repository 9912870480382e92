# Build the schedule from the validated config. Bad config stops here with one clear message.
from snakemake.exceptions import WorkflowError
from snakemake_interface_executor_plugins.settings import ExecMode

from mml_core.config import ConfigError
from mml_core.jobs.locks import WorkdirLocked, check_writable, guard_lock, record_holder
from mml_core.schedulers.plan import Plan
from mml_core.schedulers.provenance import stale_results_message
from mml_core.schedulers.registry import build_scheduler
from mml_core.tasks import TagError, TaskFileError, TaskNotFoundError

# What only the process that plans does: not cluster jobs (they re-read this file), and not --unlock
# (Snakemake parses this file for it too and tells it nothing about the command but its arguments).
PLANNING = workflow.exec_mode == ExecMode.DEFAULT and "--unlock" not in sys.argv
DRY_RUN = workflow.output_settings.dryrun

# Never two runs writing the same results: the lock of a run that is provably gone is removed, any
# other lock stops here, before Snakemake locks the directory (jobs/locks.py).
if PLANNING:
    try:
        guard_lock(Path.cwd(), dryrun=DRY_RUN)
    except WorkdirLocked as exc:
        raise WorkflowError(f"mml_core: {exc}") from None

try:
    PLAN = Plan(build_scheduler(config))
except (ConfigError, TaskNotFoundError, TaskFileError, TagError) as exc:
    raise WorkflowError(f"mml_core: {exc}") from None

_stale = PLAN.results_without_records()
if _stale:
    raise WorkflowError(f"mml_core: {stale_results_message(_stale, PLAN.root)}")

# Changed data and finished steps whose results were lost or truncated since (schedulers/plan.py):
# new fingerprints rerun the steps that read the data; REDO becomes targets of `rule all`.
REDO = []
if PLANNING:
    try:
        PLAN.update_fingerprints()
        REDO = PLAN.repair(dryrun=DRY_RUN)
    except TaskFileError as exc:
        raise WorkflowError(f"mml_core: {exc}") from None
    except OSError as exc:
        raise WorkflowError(
            f"mml_core: cannot update {PLAN.root} while planning ({exc}). Make it writable (chmod -R u+w) and free "
            "space on its file system, or run with another proj (--config proj=...)."
        ) from None

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
    PLAN.keep_summary()


onerror:
    # Snakemake deleted finish_exp's outputs before running it: a failed rerun must not lose them
    PLAN.restore_summary()
