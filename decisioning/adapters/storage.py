"""Files where a profile puts them: a local path or an ``s3://`` URI, through pyarrow's filesystems.

Every path the profiles name (event data, feature tables, monitoring reports) is a *location*: a
string that is either a local path or ``s3://bucket/key``. Reading and writing go through this
module, so a job reads and writes S3 in the ``aws`` profile exactly as it reads and writes files in
``local``. pyarrow's S3 filesystem takes its endpoint (``AWS_ENDPOINT_URL_S3``, for a local S3
server), region and credentials from the environment and the task's role, like boto3 does, so no
package beyond the lock is needed (docs/adr/0017-storage-locations.md).

MLflow writes its artifacts to S3 itself (boto3), and Feast's registry too; Feast's offline store
reads parquet through dask and fsspec, which :func:`register_s3_with_fsspec` points at pyarrow.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from pyarrow import fs as arrow_fs

Location = str | Path
REMOTE_SCHEMES = ("s3://",)


def is_remote(location: Location) -> bool:
    """Whether ``location`` is an object store URI rather than a local path."""
    return as_location(location).startswith(REMOTE_SCHEMES)


def as_location(value: Location) -> str:
    """A location as a string, repairing the URI ``Path`` makes of one (``s3:/bucket/key``).

    Command-line options typed ``Path`` receive URIs that way; this gives them their ``//`` back.
    """
    text = str(value)
    if text.startswith("s3:/") and not text.startswith("s3://"):
        return "s3://" + text.removeprefix("s3:/")
    return text


def join(base: Location, *parts: str) -> str:
    """``base`` with ``parts`` appended: ``/``-joined for a URI, the OS's way for a local path.

    ``Path`` would fold ``s3://bucket`` into ``s3:/bucket``; this never does.
    """
    if is_remote(base):
        return posixpath.join(as_location(base).rstrip("/"), *parts)
    return str(Path(base).joinpath(*parts))


def name_of(location: Location) -> str:
    """The last part of a location, as ``Path.name`` gives it for a local path."""
    return posixpath.basename(as_location(location).rstrip("/"))


def parent_of(location: Location) -> str:
    """The folder holding ``location``."""
    if is_remote(location):
        return posixpath.dirname(as_location(location).rstrip("/"))
    return str(Path(location).parent)


def filesystem(location: Location) -> tuple[arrow_fs.FileSystem, str]:
    """The pyarrow filesystem serving ``location`` and the path within it."""
    from pyarrow import fs as arrow_fs  # on use: --help stays light

    if is_remote(location):
        return arrow_fs.FileSystem.from_uri(as_location(location))
    return arrow_fs.LocalFileSystem(), str(Path(location).resolve())


def exists(location: Location) -> bool:
    """Whether a file or a folder (a prefix holding objects, on S3) is at ``location``."""
    from pyarrow import fs as arrow_fs  # on use: --help stays light

    system, path = filesystem(location)
    return system.get_file_info(path).type != arrow_fs.FileType.NotFound


def is_file(location: Location) -> bool:
    from pyarrow import fs as arrow_fs  # on use: --help stays light

    system, path = filesystem(location)
    return system.get_file_info(path).type == arrow_fs.FileType.File


def read_bytes(location: Location) -> bytes:
    """The whole content of a file; ``FileNotFoundError`` when there is none."""
    system, path = filesystem(location)
    with system.open_input_stream(path) as stream:
        return bytes(stream.read())


def write_bytes(location: Location, content: bytes) -> str:
    """Write (replace) a file, making local parent folders; return the location as a string."""
    system, path = filesystem(location)
    if not is_remote(location):
        system.create_dir(posixpath.dirname(path) or "/", recursive=True)
    with system.open_output_stream(path) as stream:
        stream.write(content)
    return as_location(location)


def read_text(location: Location) -> str:
    return read_bytes(location).decode("utf-8")


def write_text(location: Location, text: str) -> str:
    return write_bytes(location, text.encode("utf-8"))


def read_parquet(location: Location) -> pd.DataFrame:
    """A Parquet file (or a folder of parts) as a frame."""
    import pandas as pd

    system, path = filesystem(location)
    return pd.read_parquet(path, filesystem=system)


def write_parquet(frame: pd.DataFrame, location: Location) -> str:
    """Write ``frame`` as one Parquet file without its index; return the location."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    system, path = filesystem(location)
    if not is_remote(location):
        system.create_dir(posixpath.dirname(path), recursive=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, filesystem=system)
    return as_location(location)


def upload(source: Path, location: Location) -> str:
    """Copy a local file to ``location`` (a local path or an object); return the location."""
    from pyarrow import fs as arrow_fs  # on use: --help stays light

    target, path = filesystem(location)
    if not is_remote(location):
        target.create_dir(posixpath.dirname(path), recursive=True)
    arrow_fs.copy_files(str(Path(source).resolve()), path, destination_filesystem=target)
    return as_location(location)


def upload_folder(source: Path, location: Location) -> list[str]:
    """Copy every file under a local folder to the same relative places under ``location``."""
    return [
        upload(path, join(location, *path.relative_to(source).parts))
        for path in sorted(Path(source).rglob("*"))
        if path.is_file()
    ]


def register_s3_with_fsspec() -> None:
    """Serve ``s3://`` in fsspec (dask, hence Feast's file offline store) with pyarrow's S3.

    fsspec's own S3 filesystem is the s3fs package, which is not installed: this wraps pyarrow's,
    configured from the same environment. Idempotent; affects only ``s3://`` URLs.
    """
    import fsspec
    from fsspec.implementations.arrow import ArrowFSWrapper

    class ArrowS3(ArrowFSWrapper):
        protocol = ("s3", "s3a")

        def __init__(self, **options: object) -> None:
            # dask passes s3fs's options (client_kwargs.endpoint_url); pyarrow has one of them.
            from pyarrow import fs as arrow_fs

            client = options.pop("client_kwargs", None) or {}
            endpoint = client.get("endpoint_url") if isinstance(client, dict) else None
            # Unlike FileSystem.from_uri, the constructor does not read the endpoint variables.
            endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3")
            endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL")
            arguments = {"endpoint_override": endpoint} if endpoint else {}
            super().__init__(arrow_fs.S3FileSystem(**arguments))

    fsspec.register_implementation("s3", ArrowS3, clobber=True)
    fsspec.register_implementation("s3a", ArrowS3, clobber=True)
