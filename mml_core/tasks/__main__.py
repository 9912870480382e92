"""``python -m mml_core.tasks``: import data as MML tasks and list the tasks of a data root.

python -m mml_core.tasks import-folder SRC --data-dir D --name N [--dataset X] [--n-folds 5]
                                       [--test-fraction 0.2] [--seed 0] [--overwrite]
python -m mml_core.tasks import-npz FILE --data-dir D --name N [--dataset X] [--n-folds 5]
                                    [--classes a,b,...] [--seed 0] [--overwrite]
python -m mml_core.tasks import-masks IMAGES MASKS --data-dir D --name N [--classes a,b,...] [...]
python -m mml_core.tasks import-csv IMAGES CSV --task-type multilabel_classification|regression
                                    --data-dir D --name N [--classes a,b,...] [--separator "|"] [...]
python -m mml_core.tasks list --data-dir D
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mml_core.tasks import importers, typed_importers
from mml_core.tasks.index import NO_PREPROCESSING, scan_task_files

logger = logging.getLogger("mml_core.tasks")


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per importer, plus ``list``."""
    parser = argparse.ArgumentParser(
        prog="python -m mml_core.tasks",
        description="Import image data as MML tasks (RAW/DSET_<dataset>/TASK_<name>.json) or list the tasks "
        "of an MML data root.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def importer(command: str, source: str, source_help: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(command, help=help_text, description=help_text)
        sub.add_argument("source", type=Path, metavar=source, help=source_help)
        sub.add_argument(
            "--data-dir", type=Path, required=True, help="MML data root (the experiment's data_dir)"
        )
        sub.add_argument("--name", required=True, help="task name (use it in task_list / pivot.name)")
        sub.add_argument("--dataset", help="dataset folder name, RAW/DSET_<dataset> (default: the task name)")
        sub.add_argument(
            "--n-folds", type=int, default=5, help="cross-validation folds (default 5; stratified by class for classification)"
        )
        sub.add_argument("--seed", type=int, default=0, help="seed of the splits (default 0)")
        sub.add_argument("--overwrite", action="store_true", help="replace an existing task of that name")
        return sub

    folder = importer(
        "import-folder",
        "SRC",
        "folder with one sub-folder of images per class",
        "Import an image folder with one sub-folder per class (classes in sorted order).",
    )
    folder.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="stratified share held out as test split (default 0.2)",
    )
    npz = importer(
        "import-npz",
        "FILE",
        "MedMNIST-style .npz file",
        "Import a MedMNIST-style .npz ({train,val,test}_{images,labels}); val joins the training pool, "
        "test stays the test split.",
    )
    npz.add_argument("--classes", help="comma-separated class names in index order (default: 0, 1, ...)")
    masks = importer(
        "import-masks",
        "IMAGES",
        "folder of images (sub-folders allowed)",
        "Import a segmentation task: IMAGES/<path> with the mask MASKS/<path> as .png (grey class indices, 255 "
        "ignored).",
    )
    masks.add_argument("masks", type=Path, metavar="MASKS", help="folder of the masks, same relative paths")
    masks.add_argument("--classes", help="comma-separated class names of mask values 0, 1, ... (default: the values)")
    table = importer(
        "import-csv",
        "IMAGES",
        "folder of images",
        "Import a multi-label or regression task: IMAGES plus a CSV with a column image and the column labels "
        "(names joined by --separator) or one 0/1 column per class, or the column value.",
    )
    table.add_argument("csv", type=Path, metavar="CSV", help="the CSV of labels or values")
    table.add_argument("--task-type", required=True, choices=typed_importers.CSV_TYPES, help="MML's task type")
    table.add_argument("--classes", help="comma-separated class names (default: the names found, sorted)")
    table.add_argument("--separator", default="|", help="separator of the names in the labels column (default |)")
    for sub in (masks, table):
        sub.add_argument(
            "--test-fraction", type=float, default=0.2, help="random share held out as test split (default 0.2)"
        )
    listing = commands.add_parser("list", help="List the tasks found in a data root, per preprocessing.")
    listing.add_argument("--data-dir", type=Path, required=True, help="MML data root")
    return parser


def _list(data_dir: Path) -> None:
    index = scan_task_files(data_dir)
    if not index:
        logger.warning("No task files under %s (expected RAW/DSET_*/TASK_*.json).", data_dir)
        return
    sys.stdout.write("task\tpreprocessing\ttask file\n")
    for name, versions in sorted(index.items()):
        path = versions.get(NO_PREPROCESSING) or next(iter(versions.values()))
        sys.stdout.write(f"{name}\t{','.join(sorted(versions))}\t{path.relative_to(data_dir)}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; errors end with one message naming the fix and exit status 1."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        if args.command == "list":
            _list(args.data_dir)
        elif args.command == "import-folder":
            importers.import_image_folder(
                args.source, args.data_dir, args.name, args.dataset, args.n_folds, args.test_fraction,
                args.seed, args.overwrite,
            )  # fmt: skip
        else:
            classes = args.classes.split(",") if args.classes else None
            if args.command == "import-npz":
                importers.import_npz(
                    args.source, args.data_dir, args.name, args.dataset, args.n_folds, args.seed, classes,
                    args.overwrite,
                )  # fmt: skip
            elif args.command == "import-masks":
                typed_importers.import_masks(
                    args.source, args.masks, args.data_dir, args.name, classes, args.dataset, args.n_folds,
                    args.test_fraction, args.seed, args.overwrite,
                )  # fmt: skip
            else:
                typed_importers.import_csv(
                    args.source, args.csv, args.data_dir, args.name, args.task_type, classes, args.separator,
                    args.dataset, args.n_folds, args.test_fraction, args.seed, args.overwrite,
                )  # fmt: skip
    except importers.DataImportError as exc:
        logger.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
