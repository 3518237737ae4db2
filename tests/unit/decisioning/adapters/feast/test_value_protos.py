"""The online path's scalar conversions give exactly what Feast's type map gives."""

from __future__ import annotations

import numpy as np
import pytest
from feast.type_map import feast_value_type_to_python_type, python_values_to_proto_values
from feast.value_type import ValueType
from hypothesis import given
from hypothesis import strategies as st

from decisioning.adapters.feast.online import _proto, _python
from decisioning.adapters.feast.values import scalar_encoder, stored_scalar

CASES = [
    (ValueType.INT64, [0, 5, -3, True, None, np.int64(7), 2**40, "7"]),
    (ValueType.INT32, [1, 0, None]),
    (ValueType.DOUBLE, [0.0, 1.5, 3, None, float("nan"), np.float64(2.5), -0.0]),
    (ValueType.FLOAT, [1.25, None]),
    (ValueType.STRING, ["DE", "", None]),
    (ValueType.BOOL, [True, False, None]),  # not a fast-path type: Feast's own code
]


@pytest.mark.parametrize(("value_type", "values"), CASES, ids=[c[0].name for c in CASES])
def test_scalars_convert_as_feast_converts_them(value_type: ValueType, values: list) -> None:
    for value in values:
        # given Feast's conversion of the value
        expected = python_values_to_proto_values([value], value_type)[0]

        # when
        proto = _proto(value, value_type)

        # then the same proto, and the same Python value back
        assert proto == expected, (value_type, value)
        back, feast_back = _python(proto), feast_value_type_to_python_type(expected)
        assert back == feast_back or (back is None and feast_back is None), (value_type, value)
        assert type(back) is type(feast_back)


@pytest.mark.parametrize(
    ("value_type", "value"),
    [(ValueType.DOUBLE, True), (ValueType.DOUBLE, "1.5")],
)
def test_what_feast_refuses_is_refused(value_type: ValueType, value: object) -> None:
    # given a value Feast's type map refuses for the type
    with pytest.raises(Exception) as feast_error:
        python_values_to_proto_values([value], value_type)

    # when / then: the online path refuses it too, with Feast's own error
    with pytest.raises(type(feast_error.value)):
        _proto(value, value_type)


ANY_VALUE = (
    st.none()
    | st.integers()
    | st.floats()  # NaN, infinities and float32's overflow too
    | st.floats(width=32)
    | st.text()  # surrogates too
    | st.booleans()
)


@given(value=ANY_VALUE, value_type=st.sampled_from([t for t, _ in CASES]))
def test_a_stored_scalar_is_the_protos_bytes_and_value(
    value: object, value_type: ValueType
) -> None:
    # given the proto path's answer (or its refusal)
    try:
        proto = _proto(value, value_type)
    except Exception as refused:
        with pytest.raises(type(refused)):
            stored_scalar(value, value_type)
        return

    # when the value is stored directly, then it is the same bytes and reads back the same
    read, data = stored_scalar(value, value_type)

    assert data == proto.SerializeToString()
    expected = _python(proto)
    assert read == expected or (read != read and expected != expected), (read, expected)
    assert type(read) is type(expected)


@pytest.mark.parametrize("value_type", list(ValueType))
def test_a_types_encoder_is_chosen_once(value_type: ValueType) -> None:
    # the encoder a view keeps for a feature is the same object each time: views compare equal
    assert scalar_encoder(value_type) is scalar_encoder(value_type)
