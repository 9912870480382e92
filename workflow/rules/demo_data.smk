# The embedded demo tasks (scikit-learn digits) are written to data_dir the first time a task
# of the experiment needs them.
if PLAN.demo_outputs:

    rule demo_tasks:
        output:
            PLAN.demo_outputs,
        log:
            str(PLAN.root / "logs" / "demo_tasks.log"),
        script:
            "../scripts/demo_tasks.py"
