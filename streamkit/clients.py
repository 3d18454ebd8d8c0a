"""Moved to `streamkit.aws.clients` (the boto3 adapter); kept so existing imports work."""

from streamkit.aws.clients import DEFAULT_REGION, aws_client, resolve_endpoint, resolve_region

__all__ = ["DEFAULT_REGION", "aws_client", "resolve_endpoint", "resolve_region"]
