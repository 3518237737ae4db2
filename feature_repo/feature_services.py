"""Feature services: one per model version, the only feature list training and serving use.

A service never changes once a model has been trained on it: a new feature goes into a new
service, new models train on it, and each served model reads the service its version was trained
on (the version's ``feature_service`` tag), so ``fraud_v1`` in an old decision still names exactly
the features that decision used.
"""

from feast import FeatureService

from feature_repo.feature_views import (
    customer_attributes,
    customer_profile,
    customer_velocity,
    terminal_risk,
)
from feature_repo.on_demand_views import payment_context

PROFILE = ["payments_before", "usual_amount", "amount_spread"]
# A feature added to a view later must not enter a service models were already trained on, so a
# released service lists the features of every view that grew after it (the views' schemas repeat
# the names). The newest service takes whole views; a test says when a released one changes.
TERMINAL_RISK_V1 = [
    "terminal_payments_1d_count",
    "terminal_fraud_rate_1d",
    "terminal_payments_7d_count",
    "terminal_fraud_rate_7d",
    "terminal_payments_30d_count",
    "terminal_fraud_rate_30d",
]
TERMINAL_RISK_V2 = [
    *TERMINAL_RISK_V1,
    "terminal_frauds_confirmed_7d",
    "terminal_frauds_confirmed_14d",
]
PAYMENT_CONTEXT_V1 = [
    "amount_to_usual_ratio",
    "amount_zscore",
    "event_hour",
    "is_night",
    "is_weekend",
    "is_first_payment_at_terminal",
    "country_differs_from_home",
    "account_age_days",
]

PAYMENT_CONTEXT_V2 = [*PAYMENT_CONTEXT_V1, "amount_to_usual_at_terminal_ratio"]

fraud_v1 = FeatureService(
    name="fraud_v1",
    features=[
        customer_velocity,
        customer_profile[PROFILE],
        customer_attributes[["segment"]],
        terminal_risk[TERMINAL_RISK_V1],
        payment_context[PAYMENT_CONTEXT_V1],
    ],
    description="Features of fraud-detector v1: velocity, profile, terminal risk, request context.",
)

fraud_v2 = FeatureService(
    name="fraud_v2",
    features=[
        customer_velocity,
        customer_profile[PROFILE],
        customer_attributes[["segment"]],
        terminal_risk[TERMINAL_RISK_V2],
        payment_context[PAYMENT_CONTEXT_V2],
    ],
    description=(
        "fraud_v1 and chargebacks confirmed at the terminal (7 and 14 days), and the amount "
        "against the customer's usual at the terminal."
    ),
)

fraud_v3 = FeatureService(
    name="fraud_v3",  # frozen; decisioning.core.names says which service new models train on
    features=[
        customer_velocity,
        customer_profile[PROFILE],
        customer_attributes[["segment"]],
        terminal_risk,
        payment_context,
    ],
    description=(
        "fraud_v2 and the known frauds of the last 10 days on the terminal's regular customers "
        "(what the terminal watch rule reads)."
    ),
)
