"""Feast data sources: the point-in-time tables ``riskctl features build`` writes.

Paths are relative to the Feast repo path, which the store adapter sets to ``RISK_HOME``, so the
definitions stay fixed while each environment keeps its files in its own home. Column names are
the contract with ``pipelines.feature_build``.
"""

from feast import FileSource, PushSource, RequestSource
from feast.field import Field
from feast.types import Float64, String, UnixTimestamp

from decisioning.core.names import CUSTOMER_ACTIVITY_PUSH

customer_activity_source = FileSource(
    name="customer_activity_source",
    path="features/customer_activity.parquet",
    timestamp_field="event_timestamp",
    description="One row per payment: the customer's velocity and profile as of that payment.",
)

# Streaming: the decision service pushes rows of the same shape as customer_activity_source.
customer_activity_push = PushSource(
    name=CUSTOMER_ACTIVITY_PUSH,
    batch_source=customer_activity_source,
    description="Velocity and profile rows recomputed online as each payment arrives.",
)

customer_attributes_source = FileSource(
    name="customer_attributes_source",
    path="features/customer_attributes.parquet",
    timestamp_field="event_timestamp",
    description="Static customer attributes from customers.parquet, when the data has them.",
)

terminal_risk_source = FileSource(
    name="terminal_risk_source",
    path="features/terminal_risk.parquet",
    timestamp_field="event_timestamp",
    description="One row per payment: the terminal's counts and fraud rates as of that payment.",
)

payment_request = RequestSource(
    name="payment_request",
    schema=[
        Field(name="amount", dtype=Float64),
        Field(name="occurred_at", dtype=UnixTimestamp),
        Field(name="country", dtype=String),
    ],
    description="Fields of the payment being decided, known only at request time.",
)
