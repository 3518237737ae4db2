"""MLflow: the registry's alias -> version -> verified artifact, and the two pyfunc models."""
