"""Experiment configs, ablation suites (Ray Tune) and MLflow tracking for prm-rga."""
