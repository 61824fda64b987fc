"""Lists what stage wrote to the local bucket: staged Parquet files with their row counts and
table, and error files with their record counts and reasons.

    .venv/bin/python scripts/list_staged.py [--bucket deltasink-local]
"""

import argparse
import io
import json
import os
import sys

import boto3
import pyarrow.parquet as pq


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bucket", default=os.environ.get("DELTASINK_LOCAL_BUCKET", "deltasink-local"))
    parser.add_argument("--staging-prefix", default=os.environ.get("DELTASINK_STAGING_PREFIX", "staging"))
    parser.add_argument("--errors-prefix", default=os.environ.get("DELTASINK_ERRORS_PREFIX", "errors"))
    args = parser.parse_args()
    s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))

    def keys(prefix):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=args.bucket, Prefix=prefix + "/")
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"], obj["Size"]

    total_rows = 0
    print(f"staged files in s3://{args.bucket}/{args.staging_prefix}/")
    print(f"  {'rows':>6}  {'bytes':>8}  {'mode':<7} {'table':<24} key")
    for key, size in keys(args.staging_prefix):
        body = s3.get_object(Bucket=args.bucket, Key=key)["Body"].read()
        meta = pq.ParquetFile(io.BytesIO(body))
        kv = {k.decode(): v.decode() for k, v in (meta.metadata.metadata or {}).items()}
        rows = meta.metadata.num_rows
        total_rows += rows
        print(f"  {rows:>6}  {size:>8}  {kv.get('deltasink.mode', '?'):<7} {kv.get('deltasink.table', '?'):<24} {key}")
    print(f"  {total_rows:>6}  rows in total")
    print(f"error files in s3://{args.bucket}/{args.errors_prefix}/")
    for key, _ in keys(args.errors_prefix):
        lines = s3.get_object(Bucket=args.bucket, Key=key)["Body"].read().decode().splitlines()
        print(f"  {len(lines):>6}  records  {key}")
        for line in lines:
            record = json.loads(line)
            print(f"          offset {record['offset']}: {record['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
