"""S3-compatible blob store through aiobotocore (path-style; presigned or public GETs)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from core.blobstore.base import Location, Redirect
from core.blobstore.cid import is_blob_cid
from core.blobstore.settings import BlobSettings

PART_SIZE = 8 * 1024 * 1024  # S3 minimum is 5 MiB; bounded memory per upload (plyr's aioboto3 incident)


def _missing(e: ClientError) -> bool:
    code = str(e.response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}


class S3Store:
    kind = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str, public_base_url: str | None, expiry_s: int,
                 stack: AsyncExitStack) -> None:
        self._client, self.bucket, self.prefix = client, bucket, prefix
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.expiry_s = expiry_s
        self._stack = stack

    @classmethod
    async def open(cls, settings: BlobSettings) -> S3Store:
        assert settings.s3_bucket
        stack = AsyncExitStack()
        config = AioConfig(s3={"addressing_style": "path"}, signature_version="s3v4",
                           connect_timeout=10, read_timeout=60, retries={"max_attempts": 3})
        client = await stack.enter_async_context(get_session().create_client(
            "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id, aws_secret_access_key=settings.s3_secret_access_key,
            config=config,
        ))
        return cls(client, settings.s3_bucket, settings.s3_prefix, settings.s3_public_base_url,
                   settings.s3_presign_expiry_s, stack)

    def key(self, cid: str) -> str:
        if not is_blob_cid(cid):
            raise ValueError(f"not a blob CID: {cid[:80]!r}")
        return f"{self.prefix}{cid}"

    async def put_verified(self, cid: str, path: Path, size: int, mime: str) -> None:
        key = self.key(cid)
        extra = {"ContentType": mime, "CacheControl": "public, max-age=31536000, immutable"}
        if size <= PART_SIZE:
            body = await anyio.Path(path).read_bytes()
            await self._client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
        else:
            await self._multipart(key, path, extra)
        await anyio.Path(path).unlink(missing_ok=True)

    async def _multipart(self, key: str, path: Path, extra: dict[str, str]) -> None:
        up = await self._client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)
        upload_id = up["UploadId"]
        parts = []
        try:
            async with await anyio.open_file(path, "rb") as f:
                number = 1
                while chunk := await f.read(PART_SIZE):
                    r = await self._client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                       PartNumber=number, Body=chunk)
                    parts.append({"PartNumber": number, "ETag": r["ETag"]})
                    number += 1
            await self._client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                         MultipartUpload={"Parts": parts})
        except BaseException:
            await self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    async def size_of(self, cid: str) -> int | None:
        try:
            head = await self._client.head_object(Bucket=self.bucket, Key=self.key(cid))
        except ClientError as e:
            if _missing(e):
                return None
            raise
        except ValueError:
            return None
        return int(head["ContentLength"])

    async def delete(self, cid: str) -> None:
        await self._client.delete_object(Bucket=self.bucket, Key=self.key(cid))

    async def locate(self, cid: str, mime: str | None) -> Location | None:
        # No HEAD per request: the blob table says it is mirrored; the checker re-verifies a sample.
        key = self.key(cid)
        if self.public_base_url:
            return Redirect(f"{self.public_base_url}/{key}")
        params: dict[str, str] = {"Bucket": self.bucket, "Key": key}
        url = await self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=self.expiry_s)
        return Redirect(url)

    async def aclose(self) -> None:
        await self._stack.aclose()
