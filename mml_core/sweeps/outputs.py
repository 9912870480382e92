"""The files of a sweep besides its trials, and how ``snakemake --report`` shows them.

Paths are relative to ``results/<proj>/``; the trials' own files are experiments' files under
``trials/<trial>/`` (:class:`~mml_core.schedulers.steps.StepLayout`).
"""

from __future__ import annotations

from mml_core.results.outputs import Reported

SWEEP_JSON = "sweep.json"
SWEEP_CSV = "sweep.csv"
SWEEP_MD = "sweep.md"
# the Optuna study's journal file when hpo.storage is null
JOURNAL = "sweep/study.journal"
# written by the batch job once every trial of batch {batch} is told (the sweep's checkpoint)
BATCH_PATTERN = "sweep/batches/{batch}.json"
LOGS_DIR = "sweep/logs"
HISTORY_PNG = "sweep/plots/optimization_history.png"
PARALLEL_PNG = "sweep/plots/parallel_coordinates.png"
IMPORTANCE_PNG = "sweep/plots/param_importances.png"
# the report's first page of a sweep (Snakemake's `report:` directive), not a report item itself
DESCRIPTION_RST = "sweep/report/workflow.rst"

REPORTED: dict[str, Reported] = {
    "md": Reported(SWEEP_MD, "sweep_md", "Sweep", {"table": "trials (best marked)"}),
    "csv": Reported(SWEEP_CSV, "sweep_csv", "Sweep", {"table": "trials (CSV)"}),
    "history": Reported(HISTORY_PNG, "sweep_history", "Sweep", {"plot": "optimization history"}),
    "parallel": Reported(PARALLEL_PNG, "sweep_parallel", "Sweep", {"plot": "parallel coordinates"}),
    "importance": Reported(IMPORTANCE_PNG, "sweep_importance", "Sweep", {"plot": "parameter importances"}),
}
# every output of the sweep summary
SUMMARY_OUTPUTS: dict[str, str] = {
    "json": SWEEP_JSON, "description": DESCRIPTION_RST, **{key: r.path for key, r in REPORTED.items()}
}
