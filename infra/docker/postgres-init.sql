-- The databases the `services` profile names: audit store, MLflow backend, Feast registry.
CREATE DATABASE risk_audit;
CREATE DATABASE risk_mlflow;
CREATE DATABASE risk_feast;
