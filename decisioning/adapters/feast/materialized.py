"""The marker row materialize writes into every batch view: "this online store holds the view".

A payment whose terminal or customer has no row in a batch view while the view's marker is there
is simply new (its batch features unknown, as for any first payment). Without the marker the
store lost its memory (a Redis restarted empty) or was never materialized, and the payment's
batch features are missing: the decision is degraded (``features_missing``) instead of scored as
if the terminal or customer had never been seen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from decisioning.core.events import RESERVED_ENTITY_ID

if TYPE_CHECKING:
    from feast import FeatureView

# An entity value no payment may carry: the event contract refuses it as a customer or terminal
# id, and the feature build drops such rows, so a marker never overwrites a real row.
MATERIALIZED_MARKER = RESERVED_ENTITY_ID


def marker_row(view: FeatureView) -> dict[str, str]:
    """The entity values of the view's marker row."""
    return {column.name: MATERIALIZED_MARKER for column in view.entity_columns}
