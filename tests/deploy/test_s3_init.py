"""deploy/s3_init.py (compose's one-shot `s3-init`) against a real S3 API (moto's server): it creates the bucket
the AppView settings name, is a no-op the second time, and gives up with status 1 on a store that never answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import boto3

from tests.deploy.common import DEPLOY

SCRIPT = DEPLOY / "s3_init.py"


def _init(endpoint: str, bucket: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, S3_BUCKET=bucket, S3_ENDPOINT_URL=endpoint, S3_ACCESS_KEY_ID="k",
               S3_SECRET_ACCESS_KEY="s", S3_REGION="us-east-1", **extra)
    return subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)


def test_creates_the_bucket_once(s3_endpoint: str) -> None:
    bucket = f"plyr-{uuid.uuid4().hex[:12]}"
    first = _init(s3_endpoint, bucket)
    assert first.returncode == 0 and f"bucket {bucket} created" in first.stdout, first.stderr
    client = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="k", aws_secret_access_key="s",
                          region_name="us-east-1")
    assert bucket in {b["Name"] for b in client.list_buckets()["Buckets"]}
    again = _init(s3_endpoint, bucket)
    assert again.returncode == 0 and f"bucket {bucket} exists" in again.stdout, again.stderr


def test_a_store_that_never_answers_is_a_failure_not_a_hang() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    done = _init(f"http://127.0.0.1:{port}", "plyr-blobs", S3_INIT_TIMEOUT_S="2")
    assert done.returncode == 1 and "no usable answer" in done.stderr
    assert time.monotonic() - start < 60
