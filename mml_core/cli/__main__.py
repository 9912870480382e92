"""``python -m mml_core.cli``: the same as ``mml-snake``."""

import sys

from mml_core.cli.main import main

sys.exit(main())
