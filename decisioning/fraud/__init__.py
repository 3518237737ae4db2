"""The fraud scorer: anomaly detector plus XGBoost, calibrated, with reason codes and actions."""
