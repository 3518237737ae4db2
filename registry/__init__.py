"""The MLflow workflow every model shares: names, logging, aliases, gates, promotion, rollback."""
