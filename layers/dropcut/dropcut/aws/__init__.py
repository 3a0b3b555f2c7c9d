"""Adapters to AWS services: the jobs table, the slots table (slots, budget ledger, pace), S3
(storage, result copies), Step Functions (executions, task tokens) and EventBridge (job events)."""
