"""One package or module per technology behind the core's ports: Feast and Redis, the SQL audit
store, MLflow, the embedding encoder and caches, the evidence indexes, the LLM gateway,
object storage and the operations store."""
