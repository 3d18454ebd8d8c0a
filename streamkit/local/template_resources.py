"""What a template declares, made on the local stack: its Kinesis streams, and its SQS destinations.

`provision` creates each ``AWS::Kinesis::Stream`` that does not exist yet (shard count, mode and record
size as declared) and turns each mapping's ``OnFailure`` ARN into a destination the emulator opens: an
SQS queue ARN becomes ``sqs:URL`` of a queue of that name, created on the SQS endpoint
(``AWS_ENDPOINT_URL_SQS``, e.g. moto's server). A destination the emulator cannot open is one line.
"""

from __future__ import annotations

import logging
from typing import Any

from streamkit.aws_lambda.template import MappingSpec, Template
from streamkit.errors import StreamNotFoundError, TemplateError

__all__ = ["provision"]

log = logging.getLogger("streamkit.lambda")


def provision(template: Template, mappings: list[MappingSpec], *, kinesis: Any, region: str,
              sqs_client: Any = None) -> list[MappingSpec]:
    """Create the template's missing streams; `mappings` with their destinations made openable."""
    from streamkit.kinesis import wait_for_stream
    from streamkit.transport import as_kinesis

    transport = as_kinesis(kinesis)
    for s in template.streams:
        try:
            transport.describe_stream_summary(s.name)
            continue
        except StreamNotFoundError:
            pass
        transport.create_stream(s.name, s.shard_count, on_demand=s.on_demand, max_record_size_kib=s.max_record_size_kib)
        wait_for_stream(transport, s.name)
        log.warning("created stream %s (%s) as %s declares it", s.name,
                    "on-demand" if s.on_demand else f"{s.shard_count} shard(s)", template.path.name)
    out = []
    for m in mappings:
        dest = m.settings.get("on_failure")
        if isinstance(dest, str) and dest.startswith("arn:"):
            out.append(_with_destination(m, _destination(template, m, dest, region, sqs_client)))
        else:
            out.append(m)
    return out


def _with_destination(m: MappingSpec, spec: str) -> MappingSpec:
    import dataclasses

    return dataclasses.replace(m, settings={**m.settings, "on_failure": spec})


def _destination(template: Template, m: MappingSpec, arn: str, region: str, sqs_client: Any) -> str:
    from streamkit.destinations import check_destination

    try:
        check_destination(arn)  # the emulator opens ARNs itself once its destinations take them
        return arn
    except Exception:
        pass
    service = arn.split(":")[2] if arn.count(":") >= 5 else ""
    if service != "sqs":
        raise TemplateError(f"{template.path}: {m.name}: the OnFailure destination {arn} is not one the emulator can "
                            "open yet (it opens SQS queues)")
    from streamkit.aws.clients import aws_client, resolve_endpoint

    if sqs_client is None:
        if resolve_endpoint("sqs") is None:
            raise TemplateError(f"{template.path}: {m.name}: the OnFailure destination {arn} is an SQS queue: set "
                                "AWS_ENDPOINT_URL_SQS to a local SQS server (e.g. moto's) to create it there")
        sqs_client = aws_client("sqs", region=region)
    url = sqs_client.create_queue(QueueName=arn.rpartition(":")[2])["QueueUrl"]
    return f"sqs:{url}"
