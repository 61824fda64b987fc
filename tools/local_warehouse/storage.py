"""Paths the local warehouse touches: local directories and s3:// URLs (moto or real S3)."""

from __future__ import annotations

import os
import shutil
from urllib.parse import urlparse


def is_s3(path: str) -> bool:
    return path.startswith(("s3://", "s3a://"))


def join(base: str, *parts: str) -> str:
    out = base.rstrip("/")
    for p in parts:
        out += "/" + p.strip("/")
    return out


def _split_s3(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key), the key taken literally (no URL parsing: a key
    may contain ``?``, ``#`` or ``%``)."""
    rest = url.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key


_s3_client = None


def s3():
    """A boto3 S3 client for the configured endpoint (AWS_ENDPOINT_URL), created once."""
    global _s3_client
    if _s3_client is None:
        import boto3
        from botocore.config import Config

        _s3_client = boto3.client(
            "s3",
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None,
            region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )
    return _s3_client


def _local(path: str) -> str:
    return path[len("file://") :] if path.startswith("file://") else path


def exists(path: str) -> bool:
    if is_s3(path):
        bucket, key = _split_s3(path)
        try:
            s3().head_object(Bucket=bucket, Key=key)
            return True
        except Exception as e:  # botocore ClientError 404
            code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
    return os.path.isfile(_local(path))


def has_delta_log(location: str) -> bool:
    if is_s3(location):
        bucket, key = _split_s3(join(location, "_delta_log") + "/")
        resp = s3().list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        return resp.get("KeyCount", 0) > 0
    return os.path.isdir(os.path.join(_local(location), "_delta_log"))


def is_nonempty_dir(location: str) -> bool:
    if is_s3(location):
        bucket, key = _split_s3(location.rstrip("/") + "/")
        return s3().list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount", 0) > 0
    p = _local(location)
    return os.path.isdir(p) and bool(os.listdir(p))


def delete_tree(location: str) -> None:
    if is_s3(location):
        bucket, prefix = _split_s3(location.rstrip("/") + "/")
        client = s3()
        token = None
        while True:
            kw = {"Bucket": bucket, "Prefix": prefix}
            if token:
                kw["ContinuationToken"] = token
            resp = client.list_objects_v2(**kw)
            keys = [{"Key": o["Key"]} for o in resp.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            if not resp.get("IsTruncated"):
                break
            token = resp.get("NextContinuationToken")
    else:
        shutil.rmtree(_local(location), ignore_errors=True)


def list_files(directory: str) -> list[str]:
    """Every data file under ``directory`` (recursive), skipping names that start with _ or ."""
    out: list[str] = []
    if is_s3(directory):
        bucket, prefix = _split_s3(directory.rstrip("/") + "/")
        client = s3()
        token = None
        while True:
            kw = {"Bucket": bucket, "Prefix": prefix}
            if token:
                kw["ContinuationToken"] = token
            resp = client.list_objects_v2(**kw)
            for o in resp.get("Contents", []):
                rel = o["Key"][len(prefix) :]
                if rel and not any(p.startswith(("_", ".")) for p in rel.split("/")) and not rel.endswith("/"):
                    out.append(f"s3://{bucket}/{o['Key']}")
            if not resp.get("IsTruncated"):
                break
            token = resp.get("NextContinuationToken")
    else:
        root = _local(directory)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(("_", ".")))
            for f in sorted(filenames):
                if not f.startswith(("_", ".")):
                    out.append(os.path.join(dirpath, f))
    return sorted(out)


_arrow_fs = None


def parquet_metadata(path: str):
    """The Parquet footer of ``path`` (pyarrow FileMetaData): schema and row count."""
    import pyarrow.parquet as pq

    if not is_s3(path):
        return pq.read_metadata(_local(path))
    global _arrow_fs
    if _arrow_fs is None:
        from pyarrow import fs

        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
        kw = {"region": os.environ.get("AWS_REGION") or "us-east-1"}
        if endpoint:
            u = urlparse(endpoint)
            kw["endpoint_override"] = u.netloc or u.path
            kw["scheme"] = u.scheme or "http"
        if os.environ.get("AWS_ACCESS_KEY_ID"):
            kw["access_key"] = os.environ["AWS_ACCESS_KEY_ID"]
            kw["secret_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
            if os.environ.get("AWS_SESSION_TOKEN"):
                kw["session_token"] = os.environ["AWS_SESSION_TOKEN"]
        _arrow_fs = fs.S3FileSystem(**kw)
    bucket, key = _split_s3(path)
    return pq.read_metadata(f"{bucket}/{key}", filesystem=_arrow_fs)
