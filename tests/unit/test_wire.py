"""The producer's PutRecords body writer sends exactly what botocore's serializer would."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ParamValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from producer import wire


def client(**kw: Any) -> Any:
    return boto3.session.Session().client("kinesis", region_name="us-east-1", endpoint_url="http://127.0.0.1:1",
                                          aws_access_key_id="x", aws_secret_access_key="x", **kw)


STOCK = client()
FAST = client()
assert wire.install(FAST)
OP = STOCK.meta.service_model.operation_model("PutRecords")

entries = st.lists(
    st.fixed_dictionaries(
        {"Data": st.one_of(st.binary(max_size=300), st.text(max_size=50)),
         "PartitionKey": st.text(min_size=1, max_size=20)},
        optional={"ExplicitHashKey": st.integers(0, 2**128 - 1).map(str)}),
    min_size=1, max_size=20)


def stock_request(params: dict[str, Any]) -> dict[str, Any]:
    return STOCK._serializer.serialize_to_request(params, OP)  # type: ignore[no-any-return]


@settings(max_examples=200, deadline=None)
@given(records=entries, by_arn=st.booleans())
def test_bodies_decode_to_what_botocore_sends(records: list[dict[str, Any]], by_arn: bool) -> None:
    params: dict[str, Any] = {"Records": records}
    if by_arn:
        params["StreamARN"] = "arn:aws:kinesis:us-east-1:123456789012:stream/s"
    else:
        params["StreamName"] = "s"
    ours = FAST._serializer.serialize_to_request(params, OP)
    theirs = stock_request(params)
    assert json.loads(ours["body"]) == json.loads(theirs["body"])
    assert {k: v for k, v in ours.items() if k != "body"} == {k: v for k, v in theirs.items() if k != "body"}


def test_other_operations_and_unusual_entries_go_to_botocore() -> None:
    fast = client()
    wire.install(fast)
    op = STOCK.meta.service_model.operation_model("PutRecord")
    params = {"StreamName": "s", "Data": b"x", "PartitionKey": "k"}
    assert fast._serializer.serialize_to_request(params, op) == STOCK._serializer.serialize_to_request(params, op)
    odd = {"StreamName": "s", "Records": [{"Data": bytearray(b"abc"), "PartitionKey": "k"}]}
    assert fast._serializer.serialize_to_request(odd, OP)["body"] == stock_request(odd)["body"]


def test_parameters_are_still_validated() -> None:
    fast = client()
    wire.install(fast)
    with pytest.raises(ParamValidationError, match="PartitionKey"):
        fast._serializer.serialize_to_request({"StreamName": "s", "Records": [{"Data": b"x", "PartitionKey": ""}]}, OP)
    with pytest.raises(ParamValidationError, match="Data"):
        fast._serializer.serialize_to_request({"StreamName": "s", "Records": [{"Data": 5, "PartitionKey": "k"}]}, OP)


def test_install_is_idempotent_and_declines_other_clients() -> None:
    fast = client()
    assert wire.install(fast) and wire.install(fast)
    assert not isinstance(fast._serializer.inner, type(fast._serializer))
    sqs = boto3.session.Session().client("sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    assert not wire.install(sqs)
    assert not wire.install(object())


def test_without_parameter_validation_nothing_is_validated_twice() -> None:
    from botocore.config import Config

    fast = client(config=Config(parameter_validation=False))
    assert wire.install(fast)
    assert not fast._serializer.validates
