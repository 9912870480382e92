"""``mml-snake --help``: the grammar, the modes, every config group with its options, every key.

Everything listed is read from where it lives: the groups from ``config/``, each mode's line from
the first comment of its option file, the keys and their descriptions from the JSON schema, and
MML's keys and modes that mml_core lacks from :mod:`mml_core.config.mml_keys`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from mml_core.config.compose import CONFIG_DIR, config_groups
from mml_core.config.loading import load_schema
from mml_core.config.mml_keys import UNSUPPORTED, UNSUPPORTED_MODES

PROGRAM = "mml-snake"
# mode words that are not options of the mode group: MML's pp runs the pp target of the experiment
TARGET_MODES = {"pp": "preprocess the experiment's tasks with its preprocessing group option (snakemake's pp target)"}
_WIDTH = 100


def _first_comment(path: Any) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("#") and "@package" not in line:
            return line.lstrip("# ").strip()
    return ""


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    return text.split(". ")[0].rstrip(".")


def _keys(schema: Mapping[str, Any]) -> list[str]:
    lines = []
    for key, node in schema["properties"].items():
        lines.append(f"  {key:<15}{_first_sentence(node.get('description', ''))}")
        children = node.get("properties")
        if children:
            lines += textwrap.wrap(", ".join(children), _WIDTH, initial_indent=" " * 17, subsequent_indent=" " * 17)
    return lines


def usage() -> str:
    """The help text."""
    groups = config_groups()
    names = sorted(groups.get("mode", []), key=lambda name: (name != "train", name))
    modes = [f"  {name:<9}{_first_comment(CONFIG_DIR / 'mode' / f'{name}.yaml')}" for name in names]
    modes += [f"  {name:<9}{text}" for name, text in TARGET_MODES.items()]
    missing_modes = textwrap.wrap(
        "MML's " + ", ".join(UNSUPPORTED_MODES) + f" are not in mml_core ({PROGRAM} <mode> says what to use).",
        _WIDTH, initial_indent="  ", subsequent_indent="  ",
    )
    group_lines = [f"  {group:<15}{', '.join(options)}" for group, options in groups.items()]
    unsupported = textwrap.wrap(", ".join(UNSUPPORTED) + ", continue (latest: a plain rerun)", _WIDTH,
                                initial_indent="  ", subsequent_indent="  ")
    return "\n".join([
        f"{PROGRAM}: MML's command line for mml_core. Composes the config with Hydra (config groups under config/,",
        "MML's override grammar), validates it, and runs the pipeline with Snakemake.",
        "",
        f"usage: {PROGRAM} [MODE] [OVERRIDE ...] [--configfile FILE ...] [SNAKEMAKE OPTION ...] [TARGET ...]",
        "",
        "examples:",
        f"  {PROGRAM} train proj=study task_list=[sk_digits] pivot.name=sk_digits trainer.max_epochs=3 --cores 2",
        f"  {PROGRAM} train arch=timm arch.name=resnet18 arch.pretrained=false augmentations=none +optimizer.amsgrad=true -n",
        f"  {PROGRAM} tl proj=ft task_list=[a,b] pivot.name=b mode.pretrain_task=a reuse.models=study --cores 2",
        f"  {PROGRAM} test reuse.models=study mode.nested=false --cores 2 --report report.html",
        f"  {PROGRAM} --configfile config/quick.yaml mode.extend=true trainer.max_epochs=4 --cores 2",
        "",
        "modes (the first word, as in MML; none: config/config.yaml's mode keys, what plain snakemake runs):",
        *modes,
        *missing_modes,
        "",
        "overrides (Hydra's grammar: https://hydra.cc/docs/advanced/override_grammar/basic/):",
        "  key=value      set a key: trainer.max_epochs=3  mode.multitask=false  task_list=[a,b]  pivot.tags=+shrink_train?200",
        "  group=option   select a config group's option (merged over the defaults): arch=timm  mode=tl  callbacks=[default,early]",
        "  +key=value     add a key the config lacks, e.g. +optimizer.nesterov=true (keys of the schema need no +)",
        "  ++key=value    set or add",
        "  ~key           remove a key that a group option or + added (keys of config/config.yaml are required)",
        "  --configfile F experiment files (config/quick.yaml ...), applied after the group options, before the overrides",
        "",
        "config groups (config/<group>/<option>.yaml; none selected by default, so config/config.yaml's values apply):",
        *group_lines,
        "",
        "keys (defaults and comments: config/config.yaml; types: workflow/schemas/config.schema.yaml):",
        *_keys(load_schema()),
        "",
        "MML keys mml_core lacks (their MML default is accepted and ignored; other values stop with what to do):",
        *unsupported,
        "",
        "snakemake's options and targets pass through: --cores N, -n, --profile DIR, --report FILE, -R RULE, pp ...",
        "(snakemake --help lists them). The composed config is written to results/<proj>/configs/<hash>.json, where",
        "every job reads it; `snakemake --configfile` of that file plans the same steps.",
        "  --cfg job      print the composed, validated config and exit",
        "  --multirun     refused: sweeps are configured with the sweep/hpo keys",
        "",
    ])
