"""Image bytes in S3-compatible object storage, for several replicas: the
same `BlobStore` as `DirectoryBlobs`.

An image is uploaded once, finished, with Content-MD5 (the server refuses a
body damaged on the way) and its sha256 as object metadata; the upload is
then checked with a HEAD (size and sha256) before the caller writes the
record, so a record never points at a missing or partial object.

Reads go through a local cache directory: `path()` downloads an object once
(to a temp file, sha256 checked, then renamed), and the file route and
GetImageFile stream that file as they stream any other. The replica that
made an image keeps it there from the start. A cached copy is checked again
(its sha256 against the record's, or the object's) whenever its file changed
since this process last checked it, and a damaged one is fetched again from
the store; an unchanged file is not read twice. Any failure to reach the
store is UNAVAILABLE (OBJECT_STORE_UNAVAILABLE), never a stack trace.

Test only: CODEX_IMAGE_SERVER_TEST_SKIP_SHA256_CHECK=1 skips every sha256
check here (after an upload, before the record is written; on every read),
so `make chaos --skip-sha256-check` can show that its own checks catch what
these would have. It is read from the environment alone (no flag, no
setting), and a server that has it logs a warning at start."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
import urllib.parse
from pathlib import Path

import boto3
import botocore.config
import botocore.exceptions

from codex_image_server.errors import Kind, ServiceError
from codex_image_server.runtime.logs import log
from codex_image_server.store.blobs import local_names_before, write_atomic

_TMP_PREFIX = ".tmp-"
_SHA_KEY = "sha256"  # x-amz-meta-sha256
SKIP_CHECK_VARIABLE = "CODEX_IMAGE_SERVER_TEST_SKIP_SHA256_CHECK"
_CHECKED_KEPT = 100_000  # cached copies whose check is remembered (then it starts over)


def _file_state(path: Path) -> tuple:
    """Changes whenever the file is written, replaced or touched (ctime cannot be set back)."""
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def parse_url(url: str) -> tuple[str, str]:
    """s3://bucket/prefix -> (bucket, "prefix/")."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise SystemExit(f"object store {url!r}: expected s3://bucket/prefix")
    prefix = parts.path.strip("/")
    return parts.netloc, (prefix + "/") if prefix else ""


def unavailable(exc: Exception) -> ServiceError:
    return ServiceError(
        Kind.UNAVAILABLE,
        "OBJECT_STORE_UNAVAILABLE",
        f"the object store is not answering ({type(exc).__name__}); retry shortly",
    )


_UNREACHABLE = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectTimeoutError,
)


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
            s3={"addressing_style": "path"},
            connect_timeout=2,
            read_timeout=30,
            retries={"max_attempts": 2, "mode": "standard"},
            # CRC checksums and aws-chunked bodies only when an operation needs
            # them: many S3-compatible servers (s3proxy, older MinIO) refuse
            # them, and Content-MD5 plus the sha256 check cover integrity.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # Credentials: the usual AWS variables or files (boto3's own chain).
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint or None,
            region_name=region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            config=config,
        )
        self.check_sha256 = os.environ.get(SKIP_CHECK_VARIABLE) != "1"
        if not self.check_sha256:
            log(
                "store.sha256_check_skipped",
                level="warning",
                detail=f"{SKIP_CHECK_VARIABLE} is set: a test-only switch; images are neither "
                "checked after upload nor on read",
            )
        self._checked_lock = threading.Lock()
        self._checked: dict[
            str, tuple[tuple, str]
        ] = {}  # name -> (file state, sha256) of a checked copy

    def _remember(self, name: str, local: Path, sha: str) -> None:
        with self._checked_lock:
            if len(self._checked) >= _CHECKED_KEPT:
                self._checked.clear()
            self._checked[name] = (_file_state(local), sha)

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
        self._call(
            self.client.put_object,
            Key=self._key(name),
            Body=data,
            ContentMD5=md5,
            Metadata={_SHA_KEY: sha},
        )
        if self.check_sha256:
            head = self._call(self.client.head_object, Key=self._key(name))
            if (
                head.get("ContentLength") != len(data)
                or head.get("Metadata", {}).get(_SHA_KEY) != sha
            ):
                raise ServiceError(
                    Kind.UNAVAILABLE,
                    "OBJECT_STORE_UNAVAILABLE",
                    "the object store did not keep the image intact; retry",
                )
        write_atomic(self.cache / name, data)
        self._remember(name, self.cache / name, sha)

    def path(self, name: str, sha256: str = "") -> Path:
        """The cached copy, checked (see the module's docstring); `sha256`:
        the record's, when the caller has it (else the one the copy was
        checked with before, else the object's)."""
        local = self.cache / name
        try:
            intact = not self.check_sha256 or self._intact(name, local, sha256)
        except FileNotFoundError:
            intact = True  # not cached (or deleted meanwhile): downloaded below
        if not intact:
            log("store.cached_copy_damaged", level="warning", name=name)
            local.unlink(missing_ok=True)
        if not local.is_file():
            self._download(name, local)
        return local

    def _intact(self, name: str, local: Path, sha256: str) -> bool:
        state = _file_state(local)
        with self._checked_lock:
            known = self._checked.get(name)
        if known and known[0] == state and (not sha256 or sha256 == known[1]):
            return True
        expected = sha256 or (known[1] if known else "") or self._object_sha256(name)
        if not expected:
            # the store does not say (and cannot be asked now): the copy is served as it is
            return True
        digest = hashlib.sha256()
        with open(local, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != expected:
            return False
        self._remember(name, local, expected)
        return True

    def _object_sha256(self, name: str) -> str:
        try:
            head = self._call(self.client.head_object, Key=self._key(name))
        except (ServiceError, botocore.exceptions.ClientError):
            return ""
        return head.get("Metadata", {}).get(_SHA_KEY, "")

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
            if self.check_sha256 and expected and digest.hexdigest() != expected:
                raise ServiceError(
                    Kind.UNAVAILABLE,
                    "OBJECT_STORE_UNAVAILABLE",
                    "the image read from the object store was damaged; retry",
                )
            os.replace(tmp, local)
            self._remember(name, local, digest.hexdigest())
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
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    name = item["Key"][len(self.prefix) :]
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
        with self._checked_lock:
            self._checked.pop(name, None)
        return existed
