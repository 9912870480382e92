# Build the schedule from the validated config. Bad config stops here with one clear message.
from snakemake.exceptions import WorkflowError
from snakemake_interface_executor_plugins.settings import ExecMode

from mml_core.config import ConfigError
from mml_core.schedulers.locks import check_writable, clear_stale_locks
from mml_core.schedulers.base import stale_results_message
from mml_core.schedulers.plan import PARAMS_REGEX, Plan
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

# the interpreter running Snakemake (with mml_core installed) also runs the jobs
PYTHON = sys.executable

# A run killed with SIGKILL leaves Snakemake's lock behind; only the main process (not cluster
# jobs, which re-read this file) clears locks that no snakemake on this host holds any more.
if workflow.exec_mode == ExecMode.DEFAULT:
    clear_stale_locks(Path.cwd())


onstart:
    # only when jobs are about to run (not for -n): fail before any work if results are read-only
    check_writable(PLAN.root)
