# One rule per command kind of the schedule (prepare_exp, train_fold, ..., finish_exp).
# The wildcard `params` carries the step's params ("--sk_digits_0"); PLAN answers per job.
# Params: `config` is the slice of the config the command reads; Snakemake's params trigger
# compares it, so a change reruns exactly the steps that read it. `config_json` (the whole config,
# which jobs rebuild the scheduler from) takes `input`, so Snakemake counts it as derived and
# leaves it out of the trigger. Per-job work is one input and one params function: planning
# cost grows with every callable Snakemake has to inspect per job.
from mml_core.results import outputs


def report_outputs(kind):
    """finish_exp's files for people, flagged for `snakemake --report` (names: mml_core.results.outputs)."""
    if kind != "finish_exp":
        return {}
    root = PLAN.root
    return {
        "summary_md": report(str(root / outputs.SUMMARY_MD), caption=outputs.caption("summary_md"),
                             category="Summary", labels={"table": "mean ± std (paste)"}),
        "summary_csv": report(str(root / outputs.SUMMARY_CSV), caption=outputs.caption("summary_csv"),
                              category="Summary", labels={"table": "every fold (CSV)"}),
        "fold_metrics": report(str(root / outputs.FOLD_METRICS_PNG), caption=outputs.caption("fold_metrics"),
                               category="Plots", subcategory="Per-fold metrics", labels={"plot": "metrics per fold"}),
        "learning_curves": report(directory(str(root / outputs.LEARNING_CURVES_DIR)), patterns=["{task}.png"],
                                  caption=outputs.caption("learning_curves"), category="Plots",
                                  subcategory="Learning curves", labels={"task": "{task}"}),
        "confusion_matrix": report(directory(str(root / outputs.CONFUSION_MATRIX_DIR)), patterns=["{task}.png"],
                                   caption=outputs.caption("confusion_matrix"), category="Plots",
                                   subcategory="Confusion matrices", labels={"task": "{task}"}),
    }


def step_inputs(kind):
    return lambda wildcards: PLAN.inputs(PLAN.step(kind, wildcards.get("params", "")))


for spec in PLAN.rules():

    rule:
        name:
            spec.kind
        input:
            unpack(step_inputs(spec.kind)),
        output:
            metrics=spec.output,
            extra=spec.extra_outputs,
            **report_outputs(spec.kind),
        log:
            spec.log,
        params:
            config=PLAN.params(spec.kind),
            name=spec.name,
            config_json=lambda wildcards, input: PLAN.config_json,
        wildcard_constraints:
            params=PARAMS_REGEX,
        priority: spec.priority
        threads: spec.resources.get("threads", 1)
        resources:
            mem_mb=spec.resources.get("mem_mb", 1000),
            runtime=spec.resources.get("runtime", 60),
            gpu=spec.resources.get("gpu", 0),
            # slurm_partition only where the config sets one: else the profile's default applies
            **{k: v for k, v in spec.resources.items() if k.startswith("slurm_")},
        shell:
            # exec: signals reach the job itself, not an intermediate shell that would orphan it
            f"exec {PYTHON} -m mml_core.schedulers.runner --step {{params.name:q}} --output {{output.metrics:q}} "
            "--log {log:q} --threads {threads} --gpus {resources.gpu} --config-json {params.config_json:q}"


# finish_exp only aggregates and plots: on a cluster it runs beside snakemake instead of
# waiting in the queue (and for the next status check) as a job of its own
localrules:
    finish_exp,
