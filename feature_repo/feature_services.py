"""Feature services: one per model version, the only feature list training and serving use."""

from feast import FeatureService

from feature_repo.feature_views import (
    customer_attributes,
    customer_profile,
    customer_velocity,
    terminal_risk,
)
from feature_repo.on_demand_views import payment_context

fraud_v1 = FeatureService(
    name="fraud_v1",
    features=[
        customer_velocity,
        customer_profile[["payments_before", "usual_amount", "amount_spread"]],
        customer_attributes[["segment"]],
        terminal_risk,
        payment_context,
    ],
    description="Features of fraud-detector v1: velocity, profile, terminal risk, request context.",
)
