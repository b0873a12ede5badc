"""Static HTML dashboards built from the analysis outputs, linking into the MLflow UI."""
