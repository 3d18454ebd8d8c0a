"""The local stack: pinned Kinesis and DynamoDB servers on 127.0.0.1, and the limit/fault proxy."""

from streamkit.local.stack import BACKENDS, LocalStack, default_data_dir, down, status, up

__all__ = ["BACKENDS", "LocalStack", "default_data_dir", "down", "status", "up"]
