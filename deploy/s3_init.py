"""Create the blob mirror's bucket once the S3 store answers (compose's one-shot `s3-init` service).

Reads the AppView's own settings (S3_BUCKET, S3_ENDPOINT_URL, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_REGION),
so the bucket it makes is the one the ingesters write and the API redirects to. Exits 0 when the bucket exists
(made now or before), 1 when the store gave no usable answer (down, refused our key) within S3_INIT_TIMEOUT_S.
"""

from __future__ import annotations

import os
import sys
import time

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from core.retry import Backoff  # the image's installed package: the codebase's one retry policy


def main() -> int:
    bucket = os.environ["S3_BUCKET"]
    client = botocore.session.get_session().create_client(
        "s3", endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None,
        region_name=os.environ.get("S3_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("S3_ACCESS_KEY_ID"),
        aws_secret_access_key=os.environ.get("S3_SECRET_ACCESS_KEY"),
        config=Config(s3={"addressing_style": "path"}, connect_timeout=3, read_timeout=10,
                      retries={"max_attempts": 1}))
    deadline = time.monotonic() + float(os.environ.get("S3_INIT_TIMEOUT_S", "120"))
    backoff = Backoff(base_s=0.5, cap_s=5.0)
    while True:
        try:
            client.head_bucket(Bucket=bucket)
            print(f"s3-init: bucket {bucket} exists", flush=True)
            return 0
        except ClientError as e:
            if str(e.response.get("Error", {}).get("Code")) in {"404", "NoSuchBucket", "NotFound"}:
                try:
                    client.create_bucket(Bucket=bucket)
                except ClientError as made:
                    code = str(made.response.get("Error", {}).get("Code"))
                    if code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise
                print(f"s3-init: bucket {bucket} created", flush=True)
                return 0
            why = f"{e}"
        except BotoCoreError as e:  # not listening yet
            why = f"{e}"
        if time.monotonic() > deadline:
            print(f"s3-init: no usable answer from the store about bucket {bucket}: {why}", file=sys.stderr)
            return 1
        time.sleep(backoff.next_delay())


if __name__ == "__main__":
    sys.exit(main())
