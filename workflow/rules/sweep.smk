# A sweep (a config with a search_space; README "Sweeps and hyperparameter search"): its trials are
# experiments whose rules experiment.smk and steps.smk declare with the wildcard `trial`; the rules
# here join them. An Optuna study runs in batches: hpo_batch tells a batch's results to the study,
# and the summary's input function asks the next batch once the last one is told.
from mml_core.results.outputs import caption
from mml_core.sweeps import SweepPlan
from mml_core.sweeps import outputs as sweep_outputs

if isinstance(PLAN, SweepPlan):

    wildcard_constraints:
        trial=PLAN.trial_constraint,
        batch=r"\d+",

    if PLAN.study is not None:

        checkpoint hpo_batch:
            input:
                PLAN.batch_inputs,
            output:
                PLAN.batch_pattern,
            log:
                str(PLAN.root / sweep_outputs.LOGS_DIR / "hpo_batch_{batch}.log"),
            params:
                trials=PLAN.batch_trials,
                storage=PLAN.study.storage,
                study=PLAN.study.name,
            script:
                "../scripts/sweep_tell.py"

        localrules:
            hpo_batch,

    rule sweep_summary:
        input:
            unpack(PLAN.summary_inputs),
        output:
            json=PLAN.summary_outputs()["json"],
            description=PLAN.summary_outputs()["description"],
            **{
                key: report(
                    PLAN.summary_outputs()[key],
                    caption=caption(spec.caption),
                    category=spec.category,
                    labels=dict(spec.labels),
                )
                for key, spec in sweep_outputs.REPORTED.items()
            },
        log:
            str(PLAN.root / sweep_outputs.LOGS_DIR / "sweep_summary.log"),
        params:
            manifest=PLAN.manifest,
        script:
            "../scripts/sweep_summary.py"

    localrules:
        sweep_summary,
