"""s3proxy (Maven Central, jar-with-dependencies) with its filesystem backend:
a real S3 API (SigV4, multipart, ranged GET) on loopback, started in ~2 s, no
build. Chosen over MinIO/SeaweedFS, whose `go install` takes many minutes on
two cores; the replicas only speak S3, so any of them can stand in its place.

Most of a start is the JVM loading and verifying s3proxy's classes, so the
first start on a machine records them in a class-data archive (AppCDS, in
the user's cache directory) as it exits, and every later start maps that
archive: ~1.8 s of CPU per start becomes ~1.1 s. The archive is named after
the jar and the java binary it was made with; the JVM itself refuses one
that does not match and then runs without it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from . import procs

S3PROXY_VERSION = "2.1.0"
JAR = procs.REPO / ".tools" / "s3proxy" / f"s3proxy-{S3PROXY_VERSION}-jar-with-dependencies.jar"
BUCKET = "codex-images"
# Loopback-only test credentials; a real deployment passes its own (docs/kubernetes.md).
ACCESS_KEY = "codex-cluster"
SECRET_KEY = "codex-cluster-secret"
# A small heap, a quick JIT and one GC thread: it only streams files.
JVM_FLAGS = ["-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]


def class_archive(java: str) -> Path:
    """Where the class-data archive of this jar under this java lives."""
    made_with = "\0".join(
        f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
        for p in (JAR.resolve(), Path(java).resolve())
    )
    digest = hashlib.sha256(made_with.encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "codex-image-server" / f"s3proxy-{S3PROXY_VERSION}-{digest}.jsa"


class ObjectStore:
    def __init__(self, directory: Path, port: int = 0):
        self.directory = Path(directory)
        self.blobs = self.directory / "blobs"
        self.log_path = self.directory / "s3proxy.log"
        self.port = port or procs.free_port()
        self.proc: subprocess.Popen | None = None
        self._archiving: tuple[Path, Path] | None = None  # (being written, its final name)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"s3://{BUCKET}/images"

    def start(self) -> ObjectStore:
        if not JAR.exists():
            raise RuntimeError(f"{JAR} is missing: run `make cluster-deps`")
        java = shutil.which("java")
        if not java:
            raise RuntimeError("java is not installed: run `make cluster-deps`")
        # The filesystem backend keeps a bucket as a directory.
        (self.blobs / BUCKET).mkdir(parents=True, exist_ok=True)
        props = self.directory / "s3proxy.properties"
        props.write_text(
            "\n".join(
                [
                    f"s3proxy.endpoint={self.endpoint}",
                    "s3proxy.authorization=aws-v2-or-v4",
                    f"s3proxy.identity={ACCESS_KEY}",
                    f"s3proxy.credential={SECRET_KEY}",
                    "jclouds.provider=filesystem",
                    f"jclouds.filesystem.basedir={self.blobs}",
                    "",
                ]
            )
        )
        # Started twice at most: on a shared machine a JVM was once SIGKILLed
        # while starting (by something outside this run); a second failure is reported.
        for attempt in (1, 2):
            self.proc = procs.spawn(
                [java, *JVM_FLAGS, *self._archive_flags(java), "-jar", str(JAR)]
                + ["--properties", str(props)],
                self.log_path,
            )
            try:
                procs.wait_until(self._answers, "s3proxy", self.proc, self.log_path, timeout=90)
                return self
            except RuntimeError:
                if attempt == 2 or self.proc.returncode is None or self.proc.returncode >= 0:
                    raise
        return self

    def _answers(self) -> bool:
        if not procs.port_open(self.port):
            return False
        try:
            urllib.request.urlopen(self.endpoint + "/", timeout=1).close()
        except urllib.error.HTTPError:
            return True  # 403 without credentials: it is up and checking them
        except OSError:
            return False
        return True

    def _archive_flags(self, java: str) -> list[str]:
        self._keep_archive()
        archive = class_archive(java)
        if archive.exists():
            return [f"-XX:SharedArchiveFile={archive}"]
        try:
            archive.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            return []  # no cache directory to keep it in: every start loads the classes
        # Written under a name of its own as the JVM exits, renamed once whole.
        partial = archive.with_name(f"{archive.name}.{os.getpid()}-{self.port}.partial")
        self._archiving = (partial, archive)
        return [f"-XX:ArchiveClassesAtExit={partial}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]

    def _keep_archive(self) -> None:
        """The archive the last JVM wrote as it exited, if it exited whole
        (SIGTERM: 143); otherwise what it left is deleted."""
        if self._archiving is None or self.proc is None or self.proc.poll() is None:
            return
        partial, archive = self._archiving
        self._archiving = None
        if self.proc.returncode in (0, 143) and partial.is_file() and partial.stat().st_size:
            os.replace(partial, archive)
        else:
            partial.unlink(missing_ok=True)

    def stop(self) -> None:
        procs.stop(self.proc)
        self._keep_archive()
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
