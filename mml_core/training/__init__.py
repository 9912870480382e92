"""Training: the trainer factory, checkpoint lookup, Lightning tuning and shared callbacks."""
