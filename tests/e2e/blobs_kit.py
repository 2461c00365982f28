"""Fixtures for the blob mirror and /audio: an in-process S3 server, store settings, the app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx
from fastapi import FastAPI

from appview.app import create_app
from appview.settings import AppviewSettings
from tests.e2e.conftest import RunningIngester, ingester_settings
from tests.localnet.peer import Localnet

S3_CREDS = {"s3_access_key_id": "testing", "s3_secret_access_key": "testing", "s3_region": "us-east-1"}


def new_bucket(endpoint: str) -> str:
    name = f"blobs-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="us-east-1").create_bucket(Bucket=name)
    return name


def store_settings(kind: str, data_dir: Path, s3_endpoint: str | None) -> dict[str, Any]:
    """Settings (shared by the mirror and the app) for a local or an S3 store."""
    out: dict[str, Any] = {"APPVIEW_DATA_DIR": data_dir}
    if kind == "s3":
        assert s3_endpoint
        out |= {"s3_bucket": new_bucket(s3_endpoint), "s3_endpoint_url": s3_endpoint, **S3_CREDS}
    return out


def mirroring_ingester(db_url: str, net: Localnet, stores: dict[str, Any], **extra: Any) -> RunningIngester:
    settings = ingester_settings(db_url, net, outbound_allow_private=True, blob_scan_interval_s=0.1,
                                 blob_release_grace_s=0.0, playability_check_interval_s=3600.0,
                                 **stores, **extra)
    return RunningIngester(settings, db_url)


@asynccontextmanager
async def app_client(db_url: str, stores: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(AppviewSettings(database_url=db_url, **stores), db_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://appview.test") as client:
            yield client
