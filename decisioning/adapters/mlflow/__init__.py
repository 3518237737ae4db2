"""MLflow: the registry's alias -> version -> verified artifact, and the two pyfunc models.

A model version logged before ADR 0018 names its pyfunc wrapper's old module inside its
``python_model.pkl`` (cloudpickle keeps classes by module and name); the aliases below let MLflow
load such a version, as the promotion gates do with the current champion. Serving reads the
pickled scorers directly, whose classes did not move.
"""

import sys

from decisioning.adapters.mlflow import conduct_pyfunc, fraud_pyfunc

MOVED_MODULES = {
    "decisioning.fraud.pyfunc": fraud_pyfunc,
    "decisioning.conduct.pyfunc": conduct_pyfunc,
}
for _old, _module in MOVED_MODULES.items():
    sys.modules.setdefault(_old, _module)
