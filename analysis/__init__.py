"""Regenerates the paper's figures, tables and claims from MLflow runs, next to the paper's
numbers."""
