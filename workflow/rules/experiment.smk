# The first and the last step of every experiment, whatever the scheduler: prepare_exp checks the
# tasks and writes the schedule; finish_exp aggregates every step into the summary, tables and
# plots (the files people look at, flagged for `snakemake --report`).
import os

from mml_core.results import outputs


# the report's first page: what the experiment ran and its summary table (written by finish_exp;
# a sweep's: its trials, written by the sweep summary)
report: os.path.abspath(PLAN.report_description)


rule prepare_exp:
    input:
        **PLAN.inputs(0),
    output:
        metrics=PLAN.metrics_path(0),
    log:
        PLAN.log_path(0),
    params:
        config=PLAN.params("prepare_exp"),
        **PLAN.job_params,
    priority: PLAN.priority("prepare_exp")
    threads: PLAN.threads("prepare_exp")
    resources:
        **PLAN.resources("prepare_exp"),
    shell:
        RUN_STEP + "prepare_exp"


rule finish_exp:
    input:
        **PLAN.inputs(-1),
    output:
        metrics=PLAN.metrics_path(-1),
        summary=PLAN.finish_outputs()["summary"],
        description=PLAN.finish_outputs()["description"],
        **{
            key: report(
                directory(PLAN.finish_outputs()[key]) if spec.is_dir else PLAN.finish_outputs()[key],
                caption=outputs.caption(spec.caption),
                category=spec.category,
                subcategory=spec.subcategory,
                labels={**PLAN.report_labels, **spec.labels},
                **({"patterns": list(spec.patterns)} if spec.patterns else {}),
            )
            for key, spec in outputs.REPORTED.items()
        },
    log:
        PLAN.log_path(-1),
    params:
        config=PLAN.params("finish_exp"),
        **PLAN.job_params,
    priority: PLAN.priority("finish_exp")
    threads: PLAN.threads("finish_exp")
    resources:
        **PLAN.resources("finish_exp"),
    shell:
        RUN_STEP + "finish_exp"


# finish_exp only aggregates and plots: on a cluster it runs beside snakemake instead of
# waiting in the queue (and for the next status check) as a job of its own
localrules:
    finish_exp,
