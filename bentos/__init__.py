"""BentoML services: thin layers that parse, call decisioning, and respond."""
