"""Serving: the G2I pipelines as MLflow pyfunc models (models-from-code), the registry and promotion."""
