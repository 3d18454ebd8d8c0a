"""`BotoLambda`: the dispatcher's Invoke call, errors translated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamkit.aws.errors import call_aws

__all__ = ["BotoLambda", "InvokeResult"]


@dataclass(frozen=True, slots=True)
class InvokeResult:
    status: int
    function_error: str | None
    payload: bytes


class BotoLambda:
    def __init__(self, client: Any) -> None:
        self.client = client

    def invoke(self, function_name: str, payload: bytes, *, synchronous: bool) -> InvokeResult:
        out = call_aws("Lambda", self.client.invoke, FunctionName=function_name,
                       InvocationType="RequestResponse" if synchronous else "Event", Payload=payload)
        body = out.get("Payload")
        data = body.read() if hasattr(body, "read") else b""
        return InvokeResult(int(out.get("StatusCode", 0)), out.get("FunctionError"), data)
