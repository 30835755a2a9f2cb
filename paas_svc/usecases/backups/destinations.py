"""Where backups go: the local store (PAAS_HOME/backups, plain files 0600), a folder (an NFS or
other mount) and any S3-compatible store. Backups leaving the host (folder, S3) are encrypted
by the caller; a destination only moves bytes, streamed both ways.

S3 goes through boto3: a well-kept client that streams a read()-able object up as a multipart
upload in bounded parts and hands a download back as a streaming body.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Protocol

from paas_svc.errors import InvalidInput
from paas_svc.kinds.strategy import BackupFailed
from paas_svc.state.home import atomic_private_file

S3_PART_BYTES = 8 * 1024 * 1024
S3_CONCURRENCY = 4  # parts in flight: memory stays near S3_PART_BYTES * S3_CONCURRENCY
DEFAULT_REGION = "us-east-1"
LOCAL = ""  # the destination name of the local store


class Destination(Protocol):
    name: str
    encrypts: bool  # backups sent here leave the host: encrypt them

    def put(self, source: BinaryIO, relative_name: str) -> str: ...  # returns the location
    def open_read(self, location: str) -> BinaryIO: ...
    def delete(self, location: str) -> None: ...
    def list_names(self, relative_prefix: str) -> list[str]: ...


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> (bucket, 'some/prefix')."""
    if not url.startswith("s3://"):
        raise InvalidInput(f"{url!r} is not an s3:// URL.", hint="E.g. s3://my-bucket/paas-backups")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not 3 <= len(bucket) <= 63:
        raise InvalidInput(f"Invalid bucket name {bucket!r} in {url!r} (3 to 63 characters).")
    return bucket, prefix.strip("/")


@dataclass
class FolderDestination:
    name: str
    root: Path
    encrypts: bool = True

    def put(self, source: BinaryIO, relative_name: str) -> str:
        target = self.root / relative_name
        if not self.root.is_dir():  # an unmounted share: never write into the empty mount point's parent
            raise BackupFailed(f"The backup destination {self.name} ({self.root}) is missing or not a folder.",
                               hint="Check that it is mounted; the backup is retried at the next run.")
        try:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with atomic_private_file(target) as handle:  # 0600, fsynced, renamed into place
                shutil.copyfileobj(source, handle, 1024 * 1024)
        except InvalidInput as error:  # something that is not a regular file is in the way
            raise BackupFailed(f"Cannot write to the backup destination {self.name}: {error.message}", hint=error.hint) from None
        except OSError as error:
            raise BackupFailed(f"Cannot write to the backup destination {self.name} ({self.root}): {error.strerror or error}.",
                               hint="Check that the folder is mounted and writable.") from None
        return str(target)

    def open_read(self, location: str) -> BinaryIO:
        try:
            return open(location, "rb")
        except OSError as error:
            raise BackupFailed(f"Cannot read {location} from the destination {self.name}: {error.strerror}.") from None

    def delete(self, location: str) -> None:
        try:
            os.unlink(location)
        except FileNotFoundError:
            pass

    def list_names(self, relative_prefix: str) -> list[str]:
        folder = self.root / relative_prefix
        try:
            return sorted(str(path) for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))
        except OSError:
            return []


class LocalStore(FolderDestination):
    """PAAS_HOME/backups: plain backup files (0600) in a 0700 folder."""

    def __init__(self, root: Path):
        super().__init__(LOCAL, root, encrypts=False)


@dataclass
class S3Destination:
    name: str
    bucket: str
    prefix: str
    endpoint: str | None
    region: str
    access_key: str
    secret_key: str
    encrypts: bool = True
    ca_bundle: str | None = None  # a paas MinIO service with TLS: verified against the profile's CA

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self.region, verify=self.ca_bundle,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, connect_timeout=10, read_timeout=120,
                          retries={"max_attempts": 3, "mode": "standard"}))

    def key_for(self, relative_name: str) -> str:
        return f"{self.prefix}/{relative_name}" if self.prefix else relative_name

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as error:
            detail = error.response.get("Error", {})
            raise BackupFailed(f"S3 destination {self.name}: {doing} failed: {detail.get('Code', '?')} {detail.get('Message', '')}".rstrip(),
                               hint=f"Check the bucket, the keys and the endpoint of {self.name} (`paas backup dest list`).") from None
        except (BotoCoreError, OSError) as error:
            raise BackupFailed(f"S3 destination {self.name}: {doing} failed: {error}",
                               hint=f"Is the endpoint {self.endpoint or 'of AWS'} reachable?") from None

    def check(self, create_bucket: bool = False) -> None:
        from botocore.exceptions import ClientError

        client = self.client()
        with self._errors(f"reaching bucket {self.bucket}"):
            try:
                client.head_bucket(Bucket=self.bucket)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket") or not create_bucket:
                    raise
                client.create_bucket(Bucket=self.bucket)

    def put(self, source: BinaryIO, relative_name: str) -> str:
        from boto3.s3.transfer import TransferConfig

        key = self.key_for(relative_name)
        config = TransferConfig(multipart_threshold=S3_PART_BYTES, multipart_chunksize=S3_PART_BYTES,
                                max_concurrency=S3_CONCURRENCY, use_threads=True)
        # A non-seekable stream is read ahead into memory part by part; s3transfer allows 10
        # parts (80 MiB) by default. Parts in flight are enough.
        config.max_in_memory_upload_chunks = S3_CONCURRENCY
        with self._errors(f"uploading {key}"):
            self.client().upload_fileobj(source, self.bucket, key, Config=config)
        return self.url(key)

    def open_read(self, location: str) -> BinaryIO:
        bucket, key = parse_s3_url(location)
        with self._errors(f"downloading {key}"):
            return self.client().get_object(Bucket=bucket, Key=key)["Body"]

    def delete(self, location: str) -> None:
        bucket, key = parse_s3_url(location)
        with self._errors(f"deleting {key}"):
            self.client().delete_object(Bucket=bucket, Key=key)

    def list_names(self, relative_prefix: str) -> list[str]:
        prefix = self.key_for(relative_prefix)
        names = []
        with self._errors(f"listing {prefix}"):
            for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                names.extend(self.url(item["Key"]) for item in page.get("Contents", []))
        return sorted(names)
