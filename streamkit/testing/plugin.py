"""The earlier import path of the pytest plugin, now `streamkit.local.pytest_plugin` (a tool: it starts servers)."""

from streamkit.local.pytest_plugin import (  # noqa: F401
    dynamodb_client,
    kinesis_client,
    kinesis_proxy,
    kinesis_stream,
    local_stack,
    pytest_configure,
    sqs_client,
    sqs_endpoint,
    stream_factory,
    streamkit_stack_pool,
)

__all__: list[str] = []  # fixtures only
