"""streamkit: Amazon Kinesis Data Streams for Python.

Light to import: submodules load on first use (``streamkit.kinesis_handler`` imports the Lambda
wrapper only when touched), so a Lambda cold start pays only for what it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["StreamRecord", "StreamkitError", "kinesis_handler"]

if TYPE_CHECKING:
    from streamkit.aws_lambda.handler import kinesis_handler
    from streamkit.errors import StreamkitError
    from streamkit.records import StreamRecord


def __getattr__(name: str) -> Any:
    if name == "kinesis_handler":
        from streamkit.aws_lambda.handler import kinesis_handler

        return kinesis_handler
    if name == "StreamRecord":
        from streamkit.records import StreamRecord

        return StreamRecord
    if name == "StreamkitError":
        from streamkit.errors import StreamkitError

        return StreamkitError
    raise AttributeError(f"module 'streamkit' has no attribute {name!r}")
