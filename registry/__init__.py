"""The MLflow workflow: model names, logging, registering, aliases, promotion gates."""
