# The data the steps read. The embedded demo tasks (scikit-learn digits) are written to data_dir the
# first time a task of the experiment needs them; `snakemake pp` writes preprocessed versions (below). Planning keeps the data fingerprint of every task
# whose task file exists up to date; this rule makes the fingerprint of a task whose task file a job
# writes first (the demo tasks). It is declared for every task, whatever the state of the files, so
# a cluster job that reads this file again once the task file exists still finds it.
import re


if PLAN.demo_outputs:

    rule demo_tasks:
        output:
            PLAN.demo_outputs,
        log:
            str(PLAN.layout.logs_dir / "demo_tasks.log"),
        script:
            "../scripts/demo_tasks.py"


rule data_fingerprint:
    input:
        lambda wildcards: str(PLAN.task_files[wildcards.task]),
    output:
        PLAN.layout.fingerprint_pattern(),
    log:
        str(PLAN.layout.logs_dir / "data_fingerprint-{task}.log"),
    wildcard_constraints:
        task="|".join(re.escape(task) for task in PLAN.task_files),
    script:
        "../scripts/data_fingerprint.py"


# MML's pp as file targets: `snakemake pp` writes PREPROCESSED/<id>/DSET_<dataset>/TASK_<task>.json
# and the preprocessed images of every task of the experiment once; later experiments with the
# same preprocessing.id read them (and so does MML). Without it, the pipeline runs on the fly.
if PLAN.preprocess_sources:

    rule pp:
        input:
            PLAN.preprocessed_files,

    rule preprocess:
        input:
            lambda wildcards: PLAN.preprocess_sources[(wildcards.dataset, wildcards.task)],
        output:
            PLAN.preprocess_pattern(),
        log:
            str(PLAN.layout.logs_dir / "preprocess" / "{dataset}_{task}.log"),
        params:
            preprocessing=PLAN.params("prepare_exp")["preprocessing"],
        script:
            "../scripts/preprocess.py"
