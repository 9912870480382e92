# mml_core: a series of deep-learning experiments as a Snakemake pipeline.
#   config -> scheduler (mode.scheduler) -> rules (prepare_exp, one per command kind, finish_exp) -> rule all
# Plan with `snakemake -n`, run with `snakemake --cores N`; see README.md.
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


configfile: Path(workflow.basedir) / "config" / "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/experiment.smk"
include: "workflow/rules/steps.smk"


rule all:
    default_target: True
    input:
        PLAN.final_targets,
        REDO,
