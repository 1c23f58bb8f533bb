"""Shared servers on one machine for many: PostgreSQL, an MLflow tracking server on it, the Prefect server."""
