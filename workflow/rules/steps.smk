# One generated rule per command kind between prepare_exp and finish_exp (train_fold, predict_fold,
# test_task, or a custom scheduler's commands). The wildcard `step` is the step name
# ("train_fold--sk_digits_0"), constrained to the kind's names; PLAN answers the inputs per job
# (a flat list: named inputs and outputs cost Snakemake 0.5 s more per 10,000 jobs, and the job
# reads none of them by name).
# Params: `config` is the slice of the config the command reads; Snakemake's params trigger
# compares it, so a change reruns exactly the steps that read it. Planning cost grows with every
# callable Snakemake has to inspect per job: one input function, everything else static. (In a
# sweep PLAN is a SweepPlan: paths carry the wildcard `trial`, and the params are functions of it.)


from snakemake.common import get_function_params, overwrite_function_params


def step_inputs(wildcards):
    return PLAN.step_inputs(wildcards)


# Snakemake inspects an input function's signature twice per job (~45 us each: 0.9 s of a
# 10,000-step plan); its own ioutils record the signature on the function once, as done here.
overwrite_function_params(step_inputs, get_function_params(step_inputs))


for spec in PLAN.rules():

    rule:
        name:
            spec.kind
        input:
            step_inputs,
        output:
            spec.output,
        log:
            spec.log,
        params:
            config=PLAN.params(spec.kind),
            **PLAN.job_params,
        wildcard_constraints:
            step=spec.names,
        priority: spec.priority
        threads: spec.threads
        resources:
            **spec.resources,
        shell:
            RUN_STEP + "{wildcards.step:q}"
