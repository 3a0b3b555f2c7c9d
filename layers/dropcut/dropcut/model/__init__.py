"""Pure rules and records: what a job, a part and a plan are, their phases, the bucket layout,
the budget's arithmetic, the step inputs. No AWS client and no I/O here."""
