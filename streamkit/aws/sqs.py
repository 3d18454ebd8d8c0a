"""`BotoSqs`: the SQS calls of the dead-letter destination, the dispatcher and replay, errors translated."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streamkit.aws.errors import call_aws

__all__ = ["BotoSqs"]


class BotoSqs:
    def __init__(self, client: Any) -> None:
        self.client = client

    def send_message_batch(self, queue_url: str, entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The entries SQS refused (``Id``, ``Code``, ``Message``)."""
        out = call_aws("SQS", self.client.send_message_batch, QueueUrl=queue_url, Entries=list(entries))
        return list(out.get("Failed", []))

    def queue_url(self, name: str, account: str | None = None) -> str:
        """The URL of the queue `name` (of `account`, when the queue is another account's)."""
        args = {"QueueName": name} | ({"QueueOwnerAWSAccountId": account} if account else {})
        return str(call_aws("SQS", self.client.get_queue_url, **args)["QueueUrl"])

    def receive_messages(self, queue_url: str, *, max_messages: int = 10, wait: int = 1) -> list[dict[str, Any]]:
        out = call_aws("SQS", self.client.receive_message, QueueUrl=queue_url, MaxNumberOfMessages=max_messages,
                       WaitTimeSeconds=wait)
        return list(out.get("Messages", []))

    def delete_message(self, queue_url: str, receipt_handle: str) -> None:
        call_aws("SQS", self.client.delete_message, QueueUrl=queue_url, ReceiptHandle=receipt_handle)
