"""Prefect beyond one process: shared state in Prefect variables, DVC serialized across workers, drift events."""
