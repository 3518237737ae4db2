"""The LLM step: the gateway and its providers, the circuit breaker, fact extraction and
post-decision explanations (each call an audit record)."""
