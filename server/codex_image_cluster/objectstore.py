"""s3proxy (Maven Central, jar-with-dependencies) with its filesystem backend:
a real S3 API (SigV4, multipart, ranged GET) on loopback, started in ~2 s, no
build. Chosen over MinIO/SeaweedFS, whose `go install` takes many minutes on
two cores; the replicas only speak S3, so any of them can stand in its place."""

from __future__ import annotations

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


class ObjectStore:
    def __init__(self, directory: Path, port: int = 0):
        self.directory = Path(directory)
        self.blobs = self.directory / "blobs"
        self.log_path = self.directory / "s3proxy.log"
        self.port = port or procs.free_port()
        self.proc: subprocess.Popen | None = None

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
        # A small heap and a quick JIT: it only streams files. Started twice
        # at most: on a shared machine a JVM was once SIGKILLed while starting
        # (by something outside this run); a second failure is reported.
        for attempt in (1, 2):
            self.proc = procs.spawn(
                [
                    java,
                    "-Xmx256m",
                    "-XX:TieredStopAtLevel=1",
                    "-jar",
                    str(JAR),
                    "--properties",
                    str(props),
                ],
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

    def stop(self) -> None:
        procs.stop(self.proc)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
