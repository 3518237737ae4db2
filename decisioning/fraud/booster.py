"""XGBoost's margin and TreeSHAP contributions for one payment, through its C API directly.

``Booster.predict`` on a one-row ``DMatrix`` spends about 0.3 ms of CPU in Python around
0.05 ms of trees: the data backend's dispatch, JSON configs built per call, a class made per
array interface, result copies (docs/benchmarks.md, issue 19). The same C functions called with
configs built once give the same bits (``tests/unit/decisioning/fraud/test_booster.py`` compares
them with ``Booster.predict`` row by row); this is the one module that reaches past xgboost's
public API, so an upgrade that moves it fails that test rather than a decision.
"""

from __future__ import annotations

import ctypes
import json
import math

import numpy as np
import xgboost as xgb
from xgboost.core import _LIB, _check_call

_MARGIN, _CONTRIBUTIONS = 1, 2  # XGBoosterPredictFromDMatrix's prediction types


def _predict_config(kind: int) -> bytes:
    # What Booster.predict sends for output_margin / pred_contribs with its defaults.
    return json.dumps(
        {"type": kind, "training": False, "iteration_begin": 0, "iteration_end": 0}
        | {"strict_shape": False}
    ).encode()


class OneRowPredictor:
    """Margin and contributions of one row of the booster's input; safe across threads.

    The booster must not change while it is in use (the scorer's one-thread copy never does).
    """

    def __init__(self, booster: xgb.Booster) -> None:
        self._booster = booster  # held: its handle must outlive every call
        # As DMatrix(missing=nan, nthread=1) builds it from a numpy array.
        self._matrix_config = json.dumps(
            {"missing": math.nan, "nthread": 1, "data_split_mode": 0}
        ).encode()
        self._margin_config = _predict_config(_MARGIN)
        self._contributions_config = _predict_config(_CONTRIBUTIONS)

    def margin_and_contributions(self, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``predict(output_margin=True)`` (shape (1,)) and ``predict(pred_contribs=True)[0]``
        (one per column, then the bias) of a one-row DMatrix of ``row``, bit for bit."""
        data = np.ascontiguousarray(row, dtype=np.float64).reshape(1, -1)
        interface = json.dumps(
            {
                "data": [data.ctypes.data, False],
                "shape": [1, data.shape[1]],
                "strides": None,
                "typestr": "<f8",
                "version": 3,
            }
        ).encode()
        matrix = ctypes.c_void_p()
        _check_call(
            _LIB.XGDMatrixCreateFromDense(interface, self._matrix_config, ctypes.byref(matrix))
        )
        try:
            margin = self._predict(matrix, self._margin_config)
            contributions = self._predict(matrix, self._contributions_config)
        finally:
            _check_call(_LIB.XGDMatrixFree(matrix))
        return margin.reshape(1), contributions.reshape(-1)

    def _predict(self, matrix: ctypes.c_void_p, config: bytes) -> np.ndarray:
        shape = ctypes.POINTER(ctypes.c_uint64)()
        dims = ctypes.c_uint64()
        result = ctypes.POINTER(ctypes.c_float)()
        _check_call(
            _LIB.XGBoosterPredictFromDMatrix(
                self._booster.handle,
                matrix,
                config,
                ctypes.byref(shape),
                ctypes.byref(dims),
                ctypes.byref(result),
            )
        )
        size = math.prod(shape[index] for index in range(dims.value))
        # The buffer is the booster's, reused by its next prediction in this thread: copy it.
        return np.ctypeslib.as_array(result, shape=(size,)).copy()
