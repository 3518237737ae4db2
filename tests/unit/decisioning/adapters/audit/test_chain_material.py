"""PostgreSQL finishes a row's hash from the text around its ``prev_hash``: ``row_hash``'s own."""

import json

from hypothesis import given
from hypothesis import strategies as st

from decisioning.adapters.audit.chain import row_hash, row_material
from decisioning.core.decision import sha256_hex

# Any text a record may carry (no lone surrogates: UTF-8 cannot encode them, so no row holds one).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)


@given(kind=TEXT, record_id=TEXT, recorded_at=TEXT, body=TEXT, prev_hash=TEXT)
def test_the_material_around_any_prev_hash_is_the_rows_hashed_text(
    kind: str, record_id: str, recorded_at: str, body: str, prev_hash: str
) -> None:
    prefix, suffix = row_material(kind, record_id, recorded_at, body)

    finished = prefix + json.dumps(prev_hash, ensure_ascii=False) + suffix

    assert sha256_hex(finished) == row_hash(kind, record_id, recorded_at, body, prev_hash)
