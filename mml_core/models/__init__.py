"""Models: backbones (plain ``nn.Module``), classification metrics and the multi-task LightningModule."""
