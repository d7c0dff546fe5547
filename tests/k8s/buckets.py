"""A bucket to copy from and to: moto's S3 server, and the environment the real AWS CLI needs to
reach it (the only stand-in of the components' copy steps: S3 cannot be reached from here)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

#: This interpreter's bin, where the AWS CLI is installed.
BIN = Path(sys.executable).parent
REGION = "eu-west-1"


@contextmanager
def s3_server() -> Iterator[tuple[str, Any]]:
    """moto's S3 server on 127.0.0.1: its endpoint and a boto3 client of it.

    moto keeps one store per process, which every server it starts shares: test modules run in
    one process see each other's buckets, so each names its own."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        yield endpoint, client
    finally:
        server.stop()


def create_bucket(client: Any, name: str) -> None:
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})


def aws_environment(endpoint: str, home: Path) -> dict[str, str]:
    """What a copy step's shell gets to run the AWS CLI against ``endpoint``."""
    return {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
