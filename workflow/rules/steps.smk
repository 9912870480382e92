# One rule per command kind of the schedule (prepare_exp, train_fold, ..., finish_exp).
# The wildcard `params` carries the step's params ("--sk_digits_0"); PLAN answers per job.


def step_inputs(kind):
    return lambda wildcards: PLAN.inputs(PLAN.step(kind, wildcards.get("params", "")))


def step_params(kind):
    return lambda wildcards: PLAN.params(PLAN.step(kind, wildcards.get("params", "")))


for spec in PLAN.rules():

    rule:
        name:
            spec.kind
        input:
            unpack(step_inputs(spec.kind)),
        output:
            metrics=spec.output,
            extra=spec.extra_outputs,
        log:
            spec.log,
        params:
            step=step_params(spec.kind),
        wildcard_constraints:
            params=PARAMS_REGEX,
        threads: spec.resources.get("threads", 1)
        resources:
            mem_mb=spec.resources.get("mem_mb", 1000),
            runtime=spec.resources.get("runtime", 60),
        script:
            "../scripts/run_step.py"
