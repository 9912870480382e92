"""The report's pages about a run as a whole: the summary table, the run (config, overrides, code
version, steps) and the workflow description that opens ``snakemake --report``.

``finish_exp`` writes them from the summary and the :class:`RunFacts` it gathers; the report shows
the HTML pages in its frame, and the description (reStructuredText holding the same HTML) on its
first page, so the summary table is the first thing a reader sees.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from mml_core.config.record import config_yaml, format_value
from mml_core.results.report import html
from mml_core.results.tables import metric_rows, return_value_line, summary_grid

# config keys the description names, where the config has them
DESCRIBED_KEYS = {
    "arch.name": "backbone", "trainer.max_epochs": "epochs", "sampling.batch_size": "batch size",
    "optimizer._target_": "optimizer", "optimizer.lr": "learning rate", "mode.cv": "cross-validation",
    "mode.nested": "nested", "seed": "seed",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class RunFacts:
    """What a run consisted of: its config, what that changed, the code, and one record per step."""

    config: Mapping[str, Any]
    overrides: Sequence[str]
    versions: Mapping[str, str]
    code: Mapping[str, Any]
    # per finished step: step, command, started, wall_time_s, host, config_hash, git_commit
    steps: Sequence[Mapping[str, Any]]


def summary_section(summary: Mapping[str, Any], by_metric: bool = False) -> str:
    """The summary as an HTML table (rows: tasks, columns: metrics; ``by_metric``: the other way round,
    narrow) with the return value."""
    header, rows = metric_rows(summary) if by_metric else summary_grid(summary)
    note = "mean ± std over folds (population std); every per-fold value is in summary.csv"
    return html.table(header, rows, numeric_from=1) + html.paragraph(return_value_line(summary)) + html.paragraph(
        note, note=True
    )


def summary_page(summary: Mapping[str, Any]) -> str:
    """``summary.html``: the summary table on a page of its own."""
    return html.page(f"Summary of {summary.get('proj', '')}", summary_section(summary))


def _code_rows(facts: RunFacts) -> list[list[str]]:
    commit = facts.code.get("git_commit")
    state = "uncommitted changes" if facts.code.get("git_dirty") else "clean"
    rows = [[name, version] for name, version in facts.versions.items()]
    return rows + [["git commit", f"{commit} ({state})" if commit else "not a git checkout"]]


def run_page(facts: RunFacts) -> str:
    """``run.html``: code version, the overrides, the resolved config and every step's record."""
    step_rows = [
        [s["step"], s.get("started", ""), f"{s.get('wall_time_s', 0):.1f} s", s.get("host", ""),
         s.get("config_hash", ""), (s.get("git_commit") or "")[:10]]
        for s in facts.steps
    ]  # fmt: skip
    return html.page(
        f"Run of {facts.config.get('proj', '')}",
        html.section("Code", html.table(["package", "version"], _code_rows(facts))),
        html.section("Changed against config/config.yaml (overrides.yaml)",
                     html.preformatted("\n".join(facts.overrides) or "(nothing: the default experiment)")),
        html.section("Resolved config (config.yaml)", html.preformatted(config_yaml(facts.config))),
        html.section("Steps", html.table(["step", "started (UTC)", "wall time", "host", "config slice", "commit"],
                                         step_rows, numeric_from=2)),
    )  # fmt: skip


def _select(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def description_html(summary: Mapping[str, Any], facts: RunFacts) -> str:
    """The first page of the report: what ran, on which tasks, with which settings, and the summary."""
    commands = Counter(s["command"] for s in facts.steps)
    commands["finish_exp"] += 1
    schedule = ", ".join(f"{n} × {command}" for command, n in commands.items())
    config = facts.config
    settings = [f"{label} {format_value(value)}" for key, label in DESCRIBED_KEYS.items()
                if (value := _select(config, key)) is not None]  # fmt: skip
    pivot = _select(config, "pivot.name")
    what = (
        f"{summary.get('scheduler', 'The scheduler')} ran {sum(commands.values())} steps ({schedule}) on the tasks "
        f"{', '.join(config.get('task_list', []))}{f' (pivot {pivot})' if pivot else ''}; {', '.join(settings)}."
    )
    commit = facts.code.get("git_commit")
    code = f"mml_core {facts.versions.get('mml_core', '?')}" + (
        f", git commit {commit[:10]}{' with uncommitted changes' if facts.code.get('git_dirty') else ''}" if commit else ""
    )
    return (
        html.paragraph(what)
        + html.section("Summary", summary_section(summary, by_metric=True))
        + html.section("Changed against the default experiment",
                       html.preformatted("\n".join(facts.overrides) or "(nothing)"))
        + html.paragraph(f"Code: {code}. The resolved config, the code and every step's record: Run > run.html. "
                         "Plots (per-fold metrics, learning curves, confusion matrices, ROC and PR curves, "
                         "reliability diagrams) and per-class tables: in the categories of this report.", note=True)
    )  # fmt: skip


def description_rst(summary: Mapping[str, Any], facts: RunFacts) -> str:
    """The workflow description for Snakemake's ``report:`` directive: a title and the HTML of
    :func:`description_html`, kept out of the Jinja templating Snakemake applies to the file."""
    return html.raw_rst(f"mml_core experiment {summary.get('proj', '')}", description_html(summary, facts))
