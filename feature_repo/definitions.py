"""Every Feast object of the project, imported once through the package.

``riskctl features apply`` registers :data:`DEFINITIONS`; the stock ``feast`` CLI, run in this
folder, reads this module alone (``.feastignore`` hides the others, which it would otherwise
import a second time under top-level names and find every view defined twice).
"""

from __future__ import annotations

from typing import Any

from feature_repo.data_sources import (
    customer_activity_push,
    customer_activity_source,
    customer_attributes_source,
    payment_request,
    terminal_risk_source,
)
from feature_repo.entities import customer, terminal
from feature_repo.feature_services import fraud_v1, fraud_v2, fraud_v3
from feature_repo.feature_views import (
    customer_attributes,
    customer_profile,
    customer_terminal_history,
    customer_velocity,
    terminal_risk,
)
from feature_repo.on_demand_views import payment_context

# In the order Feast wants them: entities, sources, views, then the services that name views.
DEFINITIONS: tuple[Any, ...] = (
    customer,
    terminal,
    customer_activity_source,
    customer_activity_push,
    customer_attributes_source,
    terminal_risk_source,
    payment_request,
    customer_velocity,
    customer_profile,
    customer_terminal_history,
    customer_attributes,
    terminal_risk,
    payment_context,
    fraud_v1,
    fraud_v2,
    fraud_v3,
)
