"""Rules that read and write through the adapters: an input's validation, a split job's parts,
the error report, and who may act on a job (actors)."""
