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
            preprocessing=PLAN.preprocessing,
        script:
            "../scripts/preprocess.py"
