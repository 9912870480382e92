"""What ``snakemake --report`` shows beyond the plots: HTML tables and pages (``html``, ``pages``)
and the curves and tables of classification predictions (``classification``)."""
