"""mml_core: MML's experiment scheduler as a Snakemake file-target pipeline.

A scheduler class (``mml_core.schedulers``) turns an experiment config into steps; Snakemake runs
each step as its own job; the jobs build data, models and trainers with shared PyTorch Lightning
factories. Importing this package does not import torch.
"""

__version__ = "0.1.0"
