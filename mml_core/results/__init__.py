"""Results: aggregation of step outputs into the experiment summary."""
