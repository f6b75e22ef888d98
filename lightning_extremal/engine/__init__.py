"""The Lightning glue: the frozen-classifier base module, the trainer factory, input checks and
target resolution."""
