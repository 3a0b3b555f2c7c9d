"""dropcut: the domain package shipped in the Lambda layer (providers, jobs, storage, media)."""
