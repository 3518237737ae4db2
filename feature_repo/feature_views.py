"""Feast feature views: fraud features of customers and terminals, point-in-time by payment.

The three customer views read one source and one push source, so the decision service updates
velocity, profile and terminal history of a customer with a single push per payment.
"""

from datetime import timedelta

from feast import FeatureView
from feast.field import Field
from feast.types import Float64, Int64, String, UnixTimestamp

from feature_repo.data_sources import (
    customer_activity_push,
    customer_attributes_source,
    terminal_risk_source,
)
from feature_repo.entities import customer, terminal

# Counts include the payment being decided: the decision service pushes it before fetching.
customer_velocity = FeatureView(
    name="customer_velocity",
    entities=[customer],
    ttl=timedelta(days=30),
    schema=[
        Field(name="velocity_10m_count", dtype=Int64),
        Field(name="velocity_10m_amount_sum", dtype=Float64),
        Field(name="velocity_10m_distinct_terminals", dtype=Int64),
        Field(name="velocity_1h_count", dtype=Int64),
        Field(name="velocity_1h_amount_sum", dtype=Float64),
        Field(name="velocity_1h_distinct_terminals", dtype=Int64),
        Field(name="velocity_24h_count", dtype=Int64),
        Field(name="velocity_24h_amount_sum", dtype=Float64),
        Field(name="velocity_24h_distinct_terminals", dtype=Int64),
        Field(name="velocity_7d_count", dtype=Int64),
        Field(name="velocity_7d_amount_sum", dtype=Float64),
        Field(name="velocity_7d_distinct_terminals", dtype=Int64),
        Field(name="velocity_30d_count", dtype=Int64),
        Field(name="velocity_30d_amount_sum", dtype=Float64),
        Field(name="velocity_30d_distinct_terminals", dtype=Int64),
        Field(name="seconds_since_previous_payment", dtype=Float64),
    ],
    source=customer_activity_push,
    online=True,
    description="Customer velocity over 10 minutes to 30 days, the current payment included.",
)

# The profile describes the customer before the payment, so a payment never dilutes its own norm.
customer_profile = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=timedelta(0),
    schema=[
        Field(name="payments_before", dtype=Int64),
        Field(name="usual_amount", dtype=Float64),
        Field(name="amount_spread", dtype=Float64),
        Field(name="usual_country", dtype=String),
    ],
    source=customer_activity_push,
    online=True,
    description="The customer's usual amount, its spread and usual country from earlier payments.",
)

customer_terminal_history = FeatureView(
    name="customer_terminal_history",
    entities=[customer, terminal],
    ttl=timedelta(0),
    schema=[
        Field(name="payments_at_terminal_before", dtype=Int64),
        Field(name="usual_amount_at_terminal", dtype=Float64),
    ],
    source=customer_activity_push,
    online=True,
    description="How often and how much the customer paid at this terminal before.",
)

customer_attributes = FeatureView(
    name="customer_attributes",
    entities=[customer],
    ttl=timedelta(0),
    schema=[
        Field(name="segment", dtype=String),
        Field(name="home_country", dtype=String),
        Field(name="account_opened_at", dtype=UnixTimestamp),
    ],
    source=customer_attributes_source,
    online=True,
    description="Segment, home country and account opening from customers.parquet, if present.",
)

# Fraud rates and chargeback counts use only labels available at the payment's time: labels
# arrive late. The chargebacks count frauds confirmed in the window whenever they happened.
terminal_risk = FeatureView(
    name="terminal_risk",
    entities=[terminal],
    ttl=timedelta(days=30),
    schema=[
        Field(name="terminal_payments_1d_count", dtype=Int64),
        Field(name="terminal_fraud_rate_1d", dtype=Float64),
        Field(name="terminal_payments_7d_count", dtype=Int64),
        Field(name="terminal_fraud_rate_7d", dtype=Float64),
        Field(name="terminal_payments_30d_count", dtype=Int64),
        Field(name="terminal_fraud_rate_30d", dtype=Float64),
        Field(name="terminal_frauds_confirmed_7d", dtype=Int64),
        Field(name="terminal_frauds_confirmed_14d", dtype=Int64),
        Field(name="terminal_regular_frauds_10d", dtype=Int64),
    ],
    source=terminal_risk_source,
    online=True,
    description=(
        "Payments and known-fraud rate over 1-30 days; chargebacks of 7 and 14 days; known "
        "frauds of the last 10 days on the terminal's regular customers."
    ),
)
