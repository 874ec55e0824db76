"""A real S3-compatible server on 127.0.0.1 for the embedded default (moto's server, over HTTP).

moto keeps objects in memory, so the bucket contents are restored from ``<CDP_HOME>/s3`` when
the server starts and saved back there when it stops: exports outlive the run, and deleting
``CDP_HOME`` resets them with everything else. Layout: ``<data_dir>/<bucket>/<key>``.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from spark_jobs.service import free_port

log = logging.getLogger(__name__)

# Credentials moto accepts; used only against the local server, never for AWS.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}


def port_in_use(port: int) -> bool:
    """A server listens on the port. (SO_REUSEADDR: connections of a server that just stopped,
    in TIME_WAIT, do not count; the server we start sets it too.)"""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


class LocalS3Server:
    def __init__(self, data_dir: Path, port: int = 0, log_file: Path | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.log_file = log_file
        self._process: subprocess.Popen | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def start(self, timeout_s: float = 30) -> LocalS3Server:
        # Checked first: otherwise another clone's server on the port answers the readiness probe
        # and this run writes its exports there (and fails when that server stops).
        if port_in_use(self.port):
            raise RuntimeError(
                f"port {self.port} is in use (another ./cdp run?): set CDP_LOCAL_S3_PORT to a free port, or 0 for any"
            )
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        if self.log_file:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            with self.log_file.open("ab") as out:  # the child keeps its own handle
                self._process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        else:
            self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"local S3 server exited with {self._process.returncode} "
                    f"(port {self.port} in use?); see {self.log_file}"
                )
            try:
                urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1)
                break
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        else:
            self.stop()
            raise TimeoutError(f"local S3 server did not answer on {self.endpoint_url} within {timeout_s}s")
        log.info("local S3 server on %s", self.endpoint_url)
        self.restore()
        return self

    def ensure_bucket(self, bucket: str) -> None:
        client = self.client()
        if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=bucket)

    def restore(self) -> None:
        if not self.data_dir.exists():
            return
        client, restored = self.client(), 0
        for bucket_dir in sorted(p for p in self.data_dir.iterdir() if p.is_dir()):
            self.ensure_bucket(bucket_dir.name)
            for path in sorted(p for p in bucket_dir.rglob("*") if p.is_file()):
                client.upload_file(str(path), bucket_dir.name, path.relative_to(bucket_dir).as_posix())
                restored += 1
        log.info("restored %d object(s) from %s", restored, self.data_dir)

    def snapshot(self) -> None:
        """Replace the on-disk copy with what the server holds (written beside, then swapped)."""
        client = self.client()
        staging = self.data_dir.with_name(self.data_dir.name + ".saving")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        saved = 0
        for bucket in client.list_buckets().get("Buckets", []):
            (staging / bucket["Name"]).mkdir()
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith("/"):
                        continue  # a directory marker (s3a:// writes them): the keys below it say the same
                    target = staging / bucket["Name"] / obj["Key"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    client.download_file(bucket["Name"], obj["Key"], str(target))
                    saved += 1
        shutil.rmtree(self.data_dir, ignore_errors=True)
        staging.rename(self.data_dir)
        log.info("saved %d object(s) to %s", saved, self.data_dir)

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None

    def __enter__(self) -> LocalS3Server:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        try:
            if self._process and self._process.poll() is None:
                self.snapshot()
        finally:
            self.stop()
