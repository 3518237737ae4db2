"""Request bodies shared by the engine, tracing and service tests: the smallest valid events."""

PAYMENT = {
    "transaction_id": "tx1",
    "occurred_at": "2026-06-01T10:00:00Z",
    "customer_id": "C1",
    "terminal_id": "T1",
    "amount": 12.5,
}
MESSAGE = {"message_id": "m1", "received_at": "2026-06-01T10:00:00Z", "text": "I can't cope"}
