"""Moved to `streamkit.aws.wire` (the boto3 adapter); kept so existing imports work."""

from streamkit.aws.wire import install, put_records_body

__all__ = ["install", "put_records_body"]
