"""The report: one HTML page over a run's folder (reads the store, draws with viz)."""
