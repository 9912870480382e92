"""Job plumbing: running one step as a Snakemake job (``runner``), its log (``logs``), GPU slots
(``gpus``), the working directory's locks (``locks``), and driving Snakemake in-process (``workflow``).

The top layer beside the Snakefile: it imports the schedulers, never the other way round
(``AbstractBaseScheduler.run`` imports :mod:`~mml_core.jobs.workflow` inside the method).
"""
