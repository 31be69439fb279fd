"""A real S3-compatible server for tests and benchmarks: moto's server.

Starts moto on 127.0.0.1:PORT, creates BUCKET, uploads every file under
each DIR (keys are paths relative to --relative-to, default the current
directory), prints `ready <port>` and serves until its standard input
closes, so it never outlives the test process that started it.

    python scripts/s3_server.py --port 9000 --bucket spdl-test fixtures
"""
import argparse
import os
import pathlib
import sys

import logging

import boto3
from moto.server import ThreadedMotoServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--relative-to", default=".")
    parser.add_argument("dirs", nargs="*", help="folders (uploaded recursively) or files")
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{args.port}",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=args.bucket)
    base = pathlib.Path(args.relative_to).resolve()
    for d in args.dirs:
        top = pathlib.Path(d).resolve()
        for path in [top] if top.is_file() else sorted(top.rglob("*")):
            if path.is_file():
                s3.upload_file(str(path), args.bucket, path.relative_to(base).as_posix())
    print(f"ready {args.port}", flush=True)
    sys.stdin.read()  # until the parent closes the pipe (or exits)
    server.stop()
    os._exit(0)


if __name__ == "__main__":
    main()
