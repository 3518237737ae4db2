"""Feature values as Feast's online store keeps them: ``Value`` protos, and their bytes.

The online read and write convert each value the way Feast's type map does (``_proto``,
``_python``), without its per-call dispatch and pandas checks; the fraud views' scalars are
encoded directly (``stored_scalar``). Tests hold both to Feast's own conversions.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from feast import FeatureView
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.type_map import feast_value_type_to_python_type, python_values_to_proto_values
from feast.value_type import ValueType

# The scalar types the fraud views use, converted the way Feast's type map converts them (null for
# None and NaN, else the field set to the cast value) without its per-call dispatch and pandas
# checks (0.37 -> 0.32 ms of CPU a pushed view). Anything else goes through Feast's own code.
_SCALARS: dict[ValueType, tuple[str, Callable[[Any], Any]]] = {
    ValueType.INT32: ("int32_val", int),
    ValueType.INT64: ("int64_val", int),
    ValueType.FLOAT: ("float_val", float),
    ValueType.DOUBLE: ("double_val", float),
    ValueType.STRING: ("string_val", str),
}
_SCALAR_FIELDS = frozenset(name for name, _ in _SCALARS.values())


def _proto(value: Any, value_type: ValueType) -> Value:
    scalar = _SCALARS.get(value_type)
    if scalar is None or not _plain(value, value_type):
        return python_values_to_proto_values([value], value_type)[0]
    if value is None or value != value:  # null, or NaN
        return Value()
    field, cast = scalar
    return Value(**{field: cast(value)})


def stored_scalar(value: Any, value_type: ValueType) -> tuple[Any, bytes]:
    """A feature value as Feast's online store keeps it: the value read back, and the bytes of
    its ``Value`` proto. The fraud views' scalars are encoded here directly (a field tag and the
    value: ~1 µs where building, serialising and reading back a proto took ~3 µs, some 25 a
    payment); anything else, or a value the direct path cannot hold, goes through the proto. A
    property test holds the two equal."""
    return scalar_encoder(value_type)(value)


def scalar_encoder(value_type: ValueType) -> Callable[[Any], tuple[Any, bytes]]:
    """``stored_scalar`` for one value type, chosen once: callers that store the same features
    for every payment keep it, rather than look the type up for each value (an enum's hash is
    Python code: 1.0 -> 0.56 us a value in a loop here, some 30 a payment, issue 19)."""
    encoder = _ENCODERS.get(value_type)
    if encoder is None:  # through the proto; kept, so that a view's encoders compare equal
        encoder = _ENCODERS.setdefault(value_type, partial(_through_proto, value_type=value_type))
    return encoder


def _through_proto(value: Any, value_type: ValueType) -> tuple[Any, bytes]:
    proto = _proto(value, value_type)
    return _python(proto), proto.SerializeToString()


def _direct_encoder(
    value_type: ValueType, direct: Callable[[Any], tuple[Any, bytes]]
) -> Callable[[Any], tuple[Any, bytes]]:
    text = value_type == ValueType.STRING

    def encode(value: Any) -> tuple[Any, bytes]:
        if value is None:
            return None, b""
        # _plain, inlined: a str for a string, a number (not a bool) for a number
        if isinstance(value, str) if text else type(value) in _NUMBERS or _number(value):
            if value != value:  # NaN
                return None, b""
            try:
                return direct(value)
            except (OverflowError, UnicodeEncodeError):
                pass  # out of the type's range, or text UTF-8 cannot hold: the proto decides
        return _through_proto(value, value_type)

    return encode


_NUMBERS = frozenset({int, float})


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _varint(number: int) -> bytes:
    number &= 0xFFFF_FFFF_FFFF_FFFF  # a negative integer is its 64-bit two's complement
    out = bytearray()
    while number > 0x7F:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _integer(tag: bytes, bits: int) -> Callable[[Any], tuple[int, bytes]]:
    def encode(value: Any) -> tuple[int, bytes]:
        number = int(value)
        if not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
            raise OverflowError(number)
        return number, tag + _varint(number)

    return encode


def _float32(value: Any) -> tuple[float, bytes]:
    packed = struct.pack("<f", float(value))  # OverflowError past float32's range
    return struct.unpack("<f", packed)[0], b"5" + packed


def _float64(value: Any) -> tuple[float, bytes]:
    number = float(value)
    return number, b")" + struct.pack("<d", number)


def _string(value: Any) -> tuple[str, bytes]:
    text = str(value)
    data = text.encode("utf-8")
    return text, b"\x12" + _varint(len(data)) + data


# Value's fields: int32_val 3 and int64_val 4 (varint), double_val 5 (64-bit), float_val 6
# (32-bit), string_val 2 (length-delimited); the tag is field number << 3 | wire type.
_DIRECT: dict[ValueType, Callable[[Any], tuple[Any, bytes]]] = {
    ValueType.INT32: _integer(b"\x18", 32),
    ValueType.INT64: _integer(b" ", 64),
    ValueType.FLOAT: _float32,
    ValueType.DOUBLE: _float64,
    ValueType.STRING: _string,
}


_ENCODERS = {
    value_type: _direct_encoder(value_type, direct) for value_type, direct in _DIRECT.items()
}


def _plain(value: Any, value_type: ValueType) -> bool:
    """None, a str for a string, a number (not a bool) for a number: what Feast takes as is."""
    if value is None:
        return True
    if value_type == ValueType.STRING:
        return isinstance(value, str)
    return _number(value)


def _python(proto: Value) -> Any:
    """Feast's ``feast_value_type_to_python_type``, with the scalar fields read directly."""
    kind = proto.WhichOneof("val")
    if kind is None:
        return None
    if kind in _SCALAR_FIELDS:
        return getattr(proto, kind)
    return feast_value_type_to_python_type(proto)


def _entity_key(view: FeatureView, row: Mapping[str, Any]) -> EntityKey:
    """The entity key proto of a view's row, as Feast builds it for its online store."""
    columns = view.entity_columns
    return EntityKey(
        join_keys=[column.name for column in columns],
        entity_values=[_proto(row[c.name], c.dtype.to_value_type()) for c in columns],
    )
