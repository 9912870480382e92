# The data the steps read. The embedded demo tasks (scikit-learn digits) are written to data_dir the
# first time a task of the experiment needs them; the fingerprint of a task whose task file a job
# writes first (the demo tasks) is made after it. Planning keeps every other fingerprint up to date.
import re

if PLAN.demo_outputs:

    rule demo_tasks:
        output:
            PLAN.demo_outputs,
        log:
            str(PLAN.root / "logs" / "demo_tasks.log"),
        script:
            "../scripts/demo_tasks.py"


if PLAN.pending_fingerprints:

    rule data_fingerprint:
        input:
            lambda wildcards: PLAN.pending_fingerprints[wildcards.task],
        output:
            PLAN.layout.fingerprint_pattern(),
        log:
            str(PLAN.root / "logs" / "data_fingerprint-{task}.log"),
        wildcard_constraints:
            task="|".join(re.escape(task) for task in PLAN.pending_fingerprints),
        script:
            "../scripts/data_fingerprint.py"
