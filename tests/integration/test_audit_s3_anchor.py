"""The aws anchor against moto's S3 server: an Object Lock bucket, numbered objects, one writer
per place. The same checkpoints and verification as the file anchor, through boto3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from moto.server import ThreadedMotoServer

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.audit.anchor import S3Anchor
from decisioning.adapters.audit.anchoring import verify_against_anchor, write_checkpoint
from decisioning.adapters.audit.checkpoint import key_id
from decisioning.core.errors import AnchorUnavailable
from tests.support.served import free_port

pytestmark = pytest.mark.integration
BUCKET = "risk-audit-anchor-test"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> Iterator[object]:
    """The bucket, as infra/stacks/data.py makes it; each test writes under a prefix of its own."""
    with pytest.MonkeyPatch.context() as environment:
        for name, value in {
            "AWS_ENDPOINT_URL_S3": s3_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "eu-west-2",
        }.items():
            environment.setenv(name, value)
        yield _locked_bucket()


def _locked_bucket() -> object:
    client = boto3.client("s3")
    client.create_bucket(
        Bucket=BUCKET,
        CreateBucketConfiguration={"LocationConstraint": "eu-west-2"},
        ObjectLockEnabledForBucket=True,
    )
    client.put_object_lock_configuration(
        Bucket=BUCKET,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}},
        },
    )
    return client  # compliance mode keeps the objects from us too; moto forgets them on stop


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditStore]:
    audit = AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    yield audit
    audit.close()


def fill(store: AuditStore, start: int, n: int) -> None:
    for i in range(start, start + n):
        store.append("decision", f"d{i}", {"i": i})


def test_checkpoints_are_numbered_objects_and_verify_reads_them_back(
    s3: object, store: AuditStore, request: pytest.FixtureRequest
) -> None:
    key = Ed25519PrivateKey.generate()
    trusted = {key_id(key.public_key()): key.public_key()}
    anchor = S3Anchor(f"s3://{BUCKET}/{request.node.name}")

    fill(store, 0, 4)
    write_checkpoint(store, anchor, key, trusted, genesis=True)
    fill(store, 4, 3)
    write_checkpoint(store, anchor, key, trusted, genesis=True)
    fill(store, 7, 2)
    outcome = verify_against_anchor(store, anchor, trusted)

    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{request.node.name}/")  # type: ignore[attr-defined]
    assert [o["Key"].rsplit("/", 1)[1] for o in listed["Contents"]] == [
        "000000000001.json",
        "000000000002.json",
    ]
    assert not outcome.broken, outcome.problems
    assert outcome.report.anchored_seq == 7 and outcome.report.unanchored == 2


def test_a_cut_tail_is_caught_through_the_s3_anchor(
    s3: object, store: AuditStore, tmp_path: Path
) -> None:
    key = Ed25519PrivateKey.generate()
    trusted = {key_id(key.public_key()): key.public_key()}
    anchor = S3Anchor(f"s3://{BUCKET}/cut")
    fill(store, 0, 6)
    write_checkpoint(store, anchor, key, trusted, genesis=True)

    import sqlite3

    with sqlite3.connect(tmp_path / "audit.db") as db:
        for (name,) in db.execute("select name from sqlite_master where type='trigger'"):
            db.execute(f'drop trigger "{name}"')
        db.execute("delete from audit_records where seq = (select max(seq) from audit_records)")

    assert verify_against_anchor(store, anchor, trusted).broken


def test_two_writers_cannot_take_the_same_place(s3: object, store: AuditStore) -> None:
    key = Ed25519PrivateKey.generate()
    trusted = {key_id(key.public_key()): key.public_key()}
    first, second = S3Anchor(f"s3://{BUCKET}/race"), S3Anchor(f"s3://{BUCKET}/race")
    fill(store, 0, 3)

    # the second reads the empty anchor, then the first takes the first place before it writes
    with second.appending() as seen:
        assert seen == []
        taken = write_checkpoint(store, first, key, trusted, genesis=True)
        assert taken is not None
        with pytest.raises(AnchorUnavailable, match="another writer"):
            second.append(taken)

    assert len(first.read()) == 1


def test_object_lock_refuses_to_delete_a_checkpoint(s3: object, store: AuditStore) -> None:
    key = Ed25519PrivateKey.generate()
    anchor = S3Anchor(f"s3://{BUCKET}/locked")
    fill(store, 0, 2)
    write_checkpoint(store, anchor, key, {key_id(key.public_key()): key.public_key()}, genesis=True)
    name = f"locked/{1:012d}.json"
    version = s3.head_object(Bucket=BUCKET, Key=name)["VersionId"]  # type: ignore[attr-defined]

    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=BUCKET, Key=name, VersionId=version)  # type: ignore[attr-defined]
