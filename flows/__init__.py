"""Prefect flows: wiring only; every step calls a library function in reviewops."""
