"""Data: in-memory task datasets, folds and splits, and the multi-task Lightning datamodule."""
