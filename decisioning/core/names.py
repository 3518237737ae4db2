"""Names every layer shares: registered models, their aliases, the feature service and the push
source. Defined once here; ``registry`` re-exports the model names and ``feature_repo`` names its
Feast objects with these, so a rename is one edit and a test catches a layer that spells its own.
"""

FRAUD_DETECTOR = "fraud-detector"
CONDUCT_CLASSIFIER = "conduct-classifier"
MODEL_NAMES = (FRAUD_DETECTOR, CONDUCT_CLASSIFIER)

CHAMPION = "champion"
CHALLENGER = "challenger"

# Feast: the feature service new fraud models train on, one of feature_repo's frozen services
# (each keeps its own name there; a served model reads the one its version was trained on, from
# its tags), and the push source that records a decided payment's activity.
FRAUD_FEATURE_SERVICE = "fraud_v3"
CUSTOMER_ACTIVITY_PUSH = "customer_activity_push"
