"""What a template declares, made on the local stack: its Kinesis streams, and its OnFailure destinations.

`provision` creates each ``AWS::Kinesis::Stream`` that does not exist yet (shard count, mode and record
size as declared) and makes each mapping's ``OnFailure`` ARN one the emulator opens: an SQS queue, SNS
topic or S3 bucket is created on the local endpoint of its service (``AWS_ENDPOINT_URL_SQS`` / ``_SNS`` /
``_S3``, e.g. moto's server); without one the ARN is used as it is. One that cannot be opened is one line.
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
    """The template's OnFailure ARN as the emulator opens it: on a local SQS, SNS or S3 endpoint
    (``AWS_ENDPOINT_URL_SQS`` / ``_SNS`` / ``_S3``, e.g. moto's server) the queue, topic or bucket is created
    there first; elsewhere the ARN is used as it is (on AWS it exists)."""
    from streamkit.aws.clients import aws_client, resolve_endpoint
    from streamkit.destinations import check_destination

    parts = arn.split(":", 5)
    service = parts[2] if len(parts) == 6 else ""
    name = parts[5] if len(parts) == 6 else ""
    if service == "sqs" and (sqs_client is not None or resolve_endpoint("sqs") is not None):
        client = sqs_client or aws_client("sqs", region=region)
        return f"sqs:{client.create_queue(QueueName=name)['QueueUrl']}"
    if service == "sns" and resolve_endpoint("sns") is not None:
        return str(aws_client("sns", region=region).create_topic(Name=name)["TopicArn"])
    if service == "s3" and resolve_endpoint("s3") is not None:
        aws_client("s3", region=region).create_bucket(Bucket=name)
        return f"s3:{name}"
    try:
        check_destination(arn)
    except Exception as exc:
        raise TemplateError(f"{template.path}: {m.name}: the OnFailure destination {arn} cannot be opened: {exc}") \
            from None
    return arn
