# Build the schedule from the validated config. Bad config stops here with one clear message.
from snakemake.exceptions import WorkflowError

from mml_core.config import ConfigError
from mml_core.schedulers.plan import PARAMS_REGEX, Plan
from mml_core.schedulers.registry import build_scheduler
from mml_core.tasks import TaskFileError, TaskNotFoundError

try:
    PLAN = Plan(build_scheduler(config))
except (ConfigError, TaskNotFoundError, TaskFileError) as exc:
    raise WorkflowError(f"mml_core: {exc}") from None

# Snakemake resolves dependency chains recursively; a long sequential schedule needs headroom.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 20 * len(PLAN.names) + 2000))

# the interpreter running Snakemake (with mml_core installed) also runs the jobs
PYTHON = sys.executable
