"""Everything that writes files: the results store, the run jobs, sweeps, reports and the
benchmark."""
