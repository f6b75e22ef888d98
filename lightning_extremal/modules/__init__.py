"""The LightningModules: one optimisation family per file."""
