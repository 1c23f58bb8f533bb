"""Serving: the BentoML service and its parts (schemas, limits, calls, loading, auth, OpenAPI, packaging)."""
