"""The console of a run: Snakemake's logger plugin ``mml`` (``--logger mml``, set by the default profile).

Snakemake hands every message of the ``snakemake`` process to this handler instead of printing its
job blocks. While jobs run it shows one line per step as a training tool does: a step's start, its
progress (epoch, the last epoch's losses and accuracy, ETA) read from the step's progress record
(:mod:`mml_core.progress`; on a cluster over the shared file system), its end with the result, and
at the end the summary table; a failed step is its name, its last error line and its log. In a
terminal the running steps are a live table redrawn in place; elsewhere (a log file, CI, a SLURM
batch output) each is a line at most every ``--logger-mml-interval`` seconds.

Kept as Snakemake prints them: warnings and errors (a bad config stops planning with its message),
messages of executor plugins (SLURM job ids), and, when no job runs (``-n``, ``--report``,
``--lint``, nothing to be done), everything. Snakemake's restatements of a failed job (its rule
exception, "Exiting because a job execution failed") give way to the step's own line. The full
Snakemake output is one flag away: ``--logger-mml-view snakemake``. Snakemake's ``--quiet`` applies:
``rules`` hides the start lines, ``progress`` the progress and finished lines (Snakemake then
announces no finished job, so the closing line counts a job done when its outputs exist), ``all``
everything but a failed step. ``mml-snake`` takes the same options.

The module is longer than most (about 380 lines) because it is one handler with one method per
Snakemake event; the text it prints is formatted in :mod:`mml_core.jobs.console_view`.
"""

# no `from __future__ import annotations`: Snakemake reads the settings' field types at runtime
import dataclasses
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text
from snakemake_interface_logger_plugins.base import LogHandlerBase
from snakemake_interface_logger_plugins.common import LogEvent
from snakemake_interface_logger_plugins.settings import LogHandlerSettingsBase

from mml_core.jobs import console_view as view
from mml_core.progress import progress_of_log, read_progress

VIEWS = ("live", "lines", "snakemake")
# the conventional target rule of a Snakefile: a job without work of its own
TARGET_RULES = ("all",)
# Snakemake's own job failure message; the step's line replaces it
_JOB_FAILURE_EXCEPTION = "RuleException"
_EXECUTOR_PLUGINS = "snakemake_executor_plugin_"
_LOG_TAIL_BYTES = 8192


@dataclasses.dataclass
class LogHandlerSettings(LogHandlerSettingsBase):
    """``--logger-mml-view`` and ``--logger-mml-interval`` (or ``logger-mml-...`` in a profile)."""

    view: str = dataclasses.field(
        default="live",
        metadata={
            "help": "live: a line per step and a live table of the running ones in a terminal (lines "
            "elsewhere); lines: never redraw; snakemake: Snakemake's own output",
            "choices": VIEWS,
        },
    )
    interval: float = dataclasses.field(
        default=10.0,
        metadata={"help": "seconds between progress lines of a running step (lines view)", "type": float},
    )


@dataclasses.dataclass
class _Step:
    """A job the console follows."""

    name: str
    log: Path | None
    started: float
    outputs: tuple[Path, ...] = ()
    attempt: int = 1
    state: str = "running"
    # the last progress line printed for the step (lines view), when, and the epoch it showed
    shown: str = ""
    shown_at: float = 0.0
    shown_epoch: int = 0

    @property
    def progress(self) -> dict[str, Any]:
        return read_progress(progress_of_log(self.log)) if self.log else {}

    @property
    def written(self) -> bool:
        """Whether every output of the job exists (Snakemake deletes them before a job runs)."""
        return bool(self.outputs) and all(path.exists() for path in self.outputs)

    def wall_time(self, default: float) -> float:
        """The step's wall time as its record (``metrics.json``) says, on a cluster without the time it
        queued; ``default`` for jobs that are no step."""
        from mml_core.schedulers.provenance import RecordError, read_record
        from mml_core.schedulers.steps import METRICS

        record = next((path for path in self.outputs if path.name == METRICS), None)
        try:
            return float(read_record(record)["provenance"]["wall_time_s"]) if record else default
        except (OSError, RecordError, KeyError, TypeError, ValueError):
            return default


def _job_name(rule: str, wildcards: dict[str, Any]) -> str:
    """The step name of a generated rule's job (its ``step`` wildcard; in a sweep ``<trial>/<step>``),
    else the rule with its wildcards."""
    # imported here: every snakemake process imports the plugin, and the schedulers package is not small
    from mml_core.schedulers.steps import STEP_WILDCARD

    if STEP_WILDCARD in wildcards:
        trial = wildcards.get("trial")
        return f"{trial}/{wildcards[STEP_WILDCARD]}" if trial else str(wildcards[STEP_WILDCARD])
    return f"{rule}[{','.join(str(v) for v in wildcards.values())}]" if wildcards else rule


def last_log_line(log: Path | None) -> str:
    """The last line of a job log that is not a progress bar update ("" if there is none)."""
    if log is None or not log.is_file():
        return ""
    with open(log, "rb") as fh:
        fh.seek(max(log.stat().st_size - _LOG_TAIL_BYTES, 0))
        lines = fh.read().decode(errors="replace").splitlines()
    for line in reversed(lines):
        line = line.rsplit("\r", 1)[-1].strip()
        if line and "it/s]" not in line and "s/it]" not in line:
            return line
    return ""


class LogHandler(LogHandlerBase):
    """Snakemake's messages in, the console described in the module docstring out."""

    def __post_init__(self) -> None:
        from snakemake.logging import ColorizingTextHandler, DefaultFilter, DefaultFormatter, is_quiet_about

        settings = self.settings if isinstance(self.settings, LogHandlerSettings) else LogHandlerSettings()
        common = self.common_settings
        stream = sys.stdout if common.stdout else sys.stderr
        quiet = set(common.quiet or ())
        # Snakemake's own output, for the snakemake view, dry runs and runs without jobs
        self.snakemake = ColorizingTextHandler(
            nocolor=common.nocolor, stream=stream, formatter=DefaultFormatter(quiet, common.show_failed_logs),
            filter=DefaultFilter(quiet, common.debug_dag, common.verbose, common.dryrun, common.printshellcmds),
        )  # fmt: skip
        self.passthrough = settings.view == "snakemake" or common.dryrun
        self.interval = settings.interval
        self.quiet_progress = is_quiet_about(quiet, "progress")
        self.quiet_rules = is_quiet_about(quiet, "rules")
        self.quiet_all = is_quiet_about(quiet, "all")
        self.console = Console(file=stream, highlight=False, soft_wrap=True, no_color=common.nocolor)
        self.redraw = settings.view == "live" and self.console.is_terminal and not self.quiet_progress
        self.lock = threading.RLock()
        self.steps: dict[int, _Step] = {}
        self.held: list[logging.LogRecord] = []
        self.held_error: logging.LogRecord | None = None
        self.cores: int | None = None
        self.planned = 0
        self.since: float | None = None
        self.live: Live | None = None
        self.stopped = threading.Event()
        self.poller: threading.Thread | None = None

    # -- logging.Handler ------------------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.passthrough:
                self.snakemake.handle(record)
                return
            with self.lock:
                self._dispatch(record)
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        # Snakemake closes its plugin handlers, and logging's shutdown closes every handler again
        if self.stopped.is_set():
            return
        self.stopped.set()
        if self.poller is not None:
            self.poller.join(timeout=5)
        with self.lock:
            if self.live is not None:
                self.live.stop()
                self.live = None
            if not self.passthrough:
                self._finish()
        self.snakemake.close()
        super().close()

    @property
    def writes_to_stream(self) -> bool:
        return True

    @property
    def writes_to_file(self) -> bool:
        return False

    @property
    def has_filter(self) -> bool:
        return True

    @property
    def has_formatter(self) -> bool:
        return True

    @property
    def needs_rulegraph(self) -> bool:
        return False

    # -- events ---------------------------------------------------------------------------------

    def _dispatch(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        if self.since is None:
            if event == LogEvent.RUN_INFO:
                self._start(record)
            elif record.levelno >= logging.WARNING:
                self._release_held()
                self.snakemake.handle(record)
            else:
                if event == LogEvent.RESOURCES_INFO and getattr(record, "cores", None):
                    self.cores = record.cores
                self.held.append(record)  # shown as Snakemake would if no job runs
            return
        handlers = {
            LogEvent.JOB_INFO: self._job_info,
            LogEvent.JOB_FINISHED: self._job_finished,
            LogEvent.JOB_ERROR: self._job_error,
            LogEvent.ERROR: self._error,
            LogEvent.GROUP_ERROR: self._message,
            None: self._message,
        }
        if event in handlers:
            handlers[event](record)

    def _start(self, record: logging.LogRecord) -> None:
        """Jobs are about to run: a header line, then the live view."""
        self.held.clear()
        self.since = time.monotonic()
        stats = {rule: n for rule, n in getattr(record, "stats", {}).items() if rule not in ("total", *TARGET_RULES)}
        self.planned = sum(stats.values())
        cores = f" on {self.cores} cores" if self.cores else ""
        jobs = " · ".join(f"{rule} {n}" for rule, n in stats.items())
        if not self.quiet_all:
            self._print(Text.assemble(
                (f"{self.planned} step{'' if self.planned == 1 else 's'} to run{cores}", "bold"), f": {jobs}"
            ))  # fmt: skip
        if self.redraw:
            self.live = Live(self._render(), console=self.console, auto_refresh=False, transient=True)
            self.live.start()
        if not self.quiet_progress:
            self.poller = threading.Thread(target=self._poll, name="mml-console", daemon=True)
            self.poller.start()

    def _job_info(self, record: logging.LogRecord) -> None:
        if not record.output:
            return  # a target rule: nothing runs
        earlier = self.steps.get(record.jobid)
        logs = [Path(p) for p in record.log]
        name = _job_name(record.rule_name, dict(record.wildcards))
        step = _Step(name, logs[0] if logs else None, time.monotonic(), tuple(Path(p) for p in record.output))
        step.attempt = earlier.attempt + 1 if earlier else 1
        self.steps[record.jobid] = step
        if step.attempt > 1 or not (self.redraw or self.quiet_rules):
            self._print(view.started_line(step.name, step.attempt))

    def _job_finished(self, record: logging.LogRecord) -> None:
        step = self.steps.get(record.job_id)
        if step is None:
            return
        step.state = "done"
        wall_time = step.wall_time(default=time.monotonic() - step.started)
        self._print(*view.finished_lines(step.name, step.progress.get("result"), wall_time))

    def _job_error(self, record: logging.LogRecord) -> None:
        step = self.steps.get(record.jobid)
        if step is None:
            return
        step.state = "failed"
        error = step.progress.get("error") or last_log_line(step.log) or self._held_reason()
        self.held_error = None
        self._print(*view.failed_lines(step.name, error, step.log, record.rule_msg, record.log[1:]))

    def _error(self, record: logging.LogRecord) -> None:
        """Snakemake's exception of a failing job comes before the job's error: held until it does."""
        if not self._failed() and getattr(record, "exception", None) == _JOB_FAILURE_EXCEPTION:
            self.held_error = record
        elif not self._failed():
            self.snakemake.handle(record)

    def _held_reason(self) -> str:
        """Snakemake's reason for a job that wrote no error of its own (it could not start, or was killed):
        its exception's message without the exception's name."""
        if self.held_error is None:
            return "no error message (the job was killed?)"
        lines = [line.strip() for line in self.held_error.getMessage().splitlines() if line.strip()]
        return " ".join(line for line in lines[1:3] if not line.startswith("File ")) or lines[0]

    def _message(self, record: logging.LogRecord) -> None:
        if _EXECUTOR_PLUGINS in record.pathname and not self.quiet_rules:
            self._print(Text(record.getMessage(), style="dim"))
        elif record.levelno >= logging.WARNING and not (record.levelno >= logging.ERROR and self._failed()):
            self.snakemake.handle(record)

    # -- output ---------------------------------------------------------------------------------

    def _failed(self) -> list[str]:
        return [step.name for step in self.steps.values() if step.state == "failed"]

    def _print(self, *lines: Text) -> None:
        """Print ``lines`` (above the live table, which is brought up to date first)."""
        if self.live is not None:
            self.live.update(self._render())
            self.live.console.print(Text("\n").join(lines))
        else:
            self.console.print(Text("\n").join(lines))

    def _render(self) -> Any:
        now = time.monotonic()
        running = [(s.name, s.progress, now - s.started) for s in self.steps.values() if s.state == "running"]
        finished = sum(step.state == "done" for step in self.steps.values())
        return view.live_table(running, finished, self.planned, now - (self.since or now))

    def _poll(self) -> None:
        while not self.stopped.wait(0.5 if self.redraw else 1.0):
            self.refresh()

    def refresh(self) -> None:
        """Redraw the live table, or print a line for each step whose progress moved on: a new epoch's
        metrics (the first at once, then at most every ``interval`` seconds), or within a long epoch
        every six intervals."""
        with self.lock:
            if self.live is not None:
                self.live.update(self._render(), refresh=True)
                return
            now = time.monotonic()
            for step in self.steps.values():
                record = step.progress if step.state == "running" else {}
                if not record.get("phase"):
                    continue
                line = view.progress_line(step.name, record)
                since = now - (step.shown_at if step.shown else step.started)
                new_epoch = bool(record.get("metrics")) and record.get("epoch", 0) > step.shown_epoch
                if line.plain != step.shown and (
                    (new_epoch and (since >= self.interval or not step.shown_epoch)) or since >= 6 * self.interval
                ):
                    self._print(line)
                    step.shown, step.shown_at, step.shown_epoch = line.plain, now, record.get("epoch", 0)

    def _release_held(self) -> None:
        """What Snakemake said before any job ran, as it says it (its start banner aside)."""
        for record in self.held:
            if getattr(record, "event", None) != LogEvent.WORKFLOW_STARTED:
                self.snakemake.handle(record)
        self.held.clear()

    def _finish(self) -> None:
        """The last line: what finished, what failed, or what an interruption left unfinished."""
        if self.since is None:
            self._release_held()
            return
        if self.held_error is not None:
            self.snakemake.handle(self.held_error)
        for step in self.steps.values():
            # under --quiet progress Snakemake announces no finished job: its outputs tell
            if step.state == "running" and step.written:
                step.state = "done"
        elapsed = view.duration(time.monotonic() - self.since)
        failed = self._failed()
        running = [step.name for step in self.steps.values() if step.state == "running"]
        finished = sum(step.state == "done" for step in self.steps.values())
        if failed:
            self._print(Text.assemble(
                (f"{view.FAILED} {len(failed)} of {self.planned} steps failed", "bold red"),
                f" ({', '.join(failed)}) after {elapsed}. Fix the cause and run the same command again: "
                "finished steps are kept.",
            ))  # fmt: skip
        elif running or finished < self.planned:
            self._print(Text.assemble(
                (f"■ stopped after {elapsed}: {finished} of {self.planned} steps done", "bold yellow"),
                f"{' (unfinished: ' + ', '.join(running) + ')' if running else ''}. Run the same command to "
                "continue: finished steps are kept, training resumes from its last checkpoint.",
            ))  # fmt: skip
        elif not self.quiet_all:
            steps = f"{finished} step{'' if finished == 1 else 's'}"
            self._print(Text.assemble((f"{view.OK} {steps} done in {elapsed}", "bold green")))
