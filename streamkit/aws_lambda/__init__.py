"""Lambda: the Kinesis handler wrapper, event views, and the event-source-mapping emulator."""

from streamkit.aws_lambda.events import BatchResponse, KinesisEvent, KinesisEventRecord, parse_event
from streamkit.aws_lambda.handler import HandlerOptions, kinesis_handler, process_event

__all__ = [
    "BatchResponse",
    "HandlerOptions",
    "KinesisEvent",
    "KinesisEventRecord",
    "kinesis_handler",
    "parse_event",
    "process_event",
]
