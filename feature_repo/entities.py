"""Feast entities: who or what a feature describes."""

from feast import Entity, ValueType

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.STRING,
    description="A bank customer; velocity and profile features describe their payments.",
)

terminal = Entity(
    name="terminal",
    join_keys=["terminal_id"],
    value_type=ValueType.STRING,
    description="A merchant terminal; risk features describe fraud seen there.",
)
