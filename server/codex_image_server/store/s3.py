"""Image bytes in S3-compatible object storage, for several replicas: the
same `BlobStore` as `DirectoryBlobs`.

An image is uploaded once, finished, with Content-MD5 (the server refuses a
body damaged on the way) and its sha256 as object metadata; the upload is
then checked with a HEAD (size and sha256) before the caller writes the
record, so a record never points at a missing or partial object.

Reads go through a local cache directory: `path()` downloads an object once
(to a temp file, sha256 checked, then renamed), and the file route and
GetImageFile stream that file as they stream any other. The replica that
made an image keeps it there from the start. Any failure to reach the store
is UNAVAILABLE (OBJECT_STORE_UNAVAILABLE), never a stack trace."""
from __future__ import annotations

import base64
import hashlib
import os
import secrets
import urllib.parse
from pathlib import Path

import boto3
import botocore.config
import botocore.exceptions

from ..errors import Kind, ServiceError
from .blobs import local_names_before, write_atomic

_TMP_PREFIX = ".tmp-"
_SHA_KEY = "sha256"  # x-amz-meta-sha256


def parse_url(url: str) -> tuple[str, str]:
    """s3://bucket/prefix -> (bucket, "prefix/")."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise SystemExit(f"object store {url!r}: expected s3://bucket/prefix")
    prefix = parts.path.strip("/")
    return parts.netloc, (prefix + "/") if prefix else ""


def unavailable(exc: Exception) -> ServiceError:
    return ServiceError(Kind.UNAVAILABLE, "OBJECT_STORE_UNAVAILABLE",
                        f"the object store is not answering ({type(exc).__name__}); retry shortly")


_UNREACHABLE = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
                botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError)


def _status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


class S3Blobs:
    def __init__(self, url: str, cache_dir: Path, *, endpoint: str = "", region: str = ""):
        self.bucket, self.prefix = parse_url(url)
        self.cache = Path(cache_dir)
        self.cache.mkdir(parents=True, exist_ok=True)
        for leftover in self.cache.glob(_TMP_PREFIX + "*"):
            leftover.unlink(missing_ok=True)
        config = botocore.config.Config(
            s3={"addressing_style": "path"}, connect_timeout=2, read_timeout=30,
            retries={"max_attempts": 2, "mode": "standard"},
            # CRC checksums and aws-chunked bodies only when an operation needs
            # them: many S3-compatible servers (s3proxy, older MinIO) refuse
            # them, and Content-MD5 plus the sha256 check cover integrity.
            request_checksum_calculation="when_required", response_checksum_validation="when_required")
        # Credentials: the usual AWS variables or files (boto3's own chain).
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint or None, region_name=region or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1", config=config)

    def _key(self, name: str) -> str:
        return self.prefix + name

    def _call(self, method, **kwargs):
        try:
            return method(Bucket=self.bucket, **kwargs)
        except _UNREACHABLE as exc:
            raise unavailable(exc) from None
        except botocore.exceptions.ClientError as exc:
            if _status(exc) in (0, 500, 502, 503, 504):
                raise unavailable(exc) from None
            raise

    def put(self, name: str, data: bytes) -> None:
        sha = hashlib.sha256(data).hexdigest()
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - the S3 transfer check
        self._call(self.client.put_object, Key=self._key(name), Body=data, ContentMD5=md5,
                   Metadata={_SHA_KEY: sha})
        head = self._call(self.client.head_object, Key=self._key(name))
        if head.get("ContentLength") != len(data) or head.get("Metadata", {}).get(_SHA_KEY) != sha:
            raise ServiceError(Kind.UNAVAILABLE, "OBJECT_STORE_UNAVAILABLE",
                               "the object store did not keep the image intact; retry")
        write_atomic(self.cache / name, data)

    def path(self, name: str) -> Path:
        local = self.cache / name
        if not local.is_file():
            self._download(name, local)
        return local

    def _download(self, name: str, local: Path) -> None:
        tmp = local.with_name(f"{_TMP_PREFIX}{secrets.token_hex(6)}-{name}")
        try:
            got = self._call(self.client.get_object, Key=self._key(name))
        except botocore.exceptions.ClientError as exc:
            if _status(exc) == 404:
                return  # the caller's open() says the file is not there
            raise
        digest = hashlib.sha256()
        try:
            with open(tmp, "xb") as f:
                for chunk in got["Body"].iter_chunks(1 << 20):
                    digest.update(chunk)
                    f.write(chunk)
            expected = got.get("Metadata", {}).get(_SHA_KEY)
            if expected and digest.hexdigest() != expected:
                raise ServiceError(Kind.UNAVAILABLE, "OBJECT_STORE_UNAVAILABLE",
                                   "the image read from the object store was damaged; retry")
            os.replace(tmp, local)
        except _UNREACHABLE as exc:
            raise unavailable(exc) from None
        finally:
            tmp.unlink(missing_ok=True)

    def exists(self, name: str) -> bool:
        if (self.cache / name).is_file():
            return True
        try:
            self._call(self.client.head_object, Key=self._key(name))
        except botocore.exceptions.ClientError as exc:
            if _status(exc) == 404:
                return False
            raise
        return True

    def names_before(self, cutoff_unix_s: float):
        """The store's objects, then this replica's cached copies no longer in it."""
        seen = set()
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    name = item["Key"][len(self.prefix):]
                    seen.add(name)
                    if "/" not in name and item["LastModified"].timestamp() < cutoff_unix_s:
                        yield name
        except (*_UNREACHABLE, botocore.exceptions.ClientError) as exc:
            raise unavailable(exc) from None
        for name in local_names_before(self.cache, cutoff_unix_s):
            if name not in seen:
                yield name

    def delete(self, name: str) -> bool:
        existed = self.exists(name)
        self._call(self.client.delete_object, Key=self._key(name))
        (self.cache / name).unlink(missing_ok=True)
        return existed
