"""The fan-out dispatcher: trade per-shard ordering for throughput, explicitly and safely."""

from dispatcher.core import Dispatcher, DispatchResult
from dispatcher.handler import handler
from dispatcher.targets import LambdaTarget, LocalTarget, SqsTarget

__all__ = ["DispatchResult", "Dispatcher", "LambdaTarget", "LocalTarget", "SqsTarget", "handler"]
