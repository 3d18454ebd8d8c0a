"""`BotoSns`: the SNS call of the OnFailure / dead-letter destination, errors translated."""

from __future__ import annotations

from typing import Any

from streamkit.aws.errors import call_aws

__all__ = ["BotoSns"]


class BotoSns:
    def __init__(self, client: Any) -> None:
        self.client = client

    def publish(self, topic_arn: str, message: str) -> str:
        """The message id."""
        return str(call_aws("SNS", self.client.publish, TopicArn=topic_arn, Message=message)["MessageId"])
