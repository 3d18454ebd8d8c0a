"""The limit-enforcing, fault-injecting proxy against a real kinesalite: limits, AWS error shapes, fault rates."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from streamkit.testing import ProxyHandle, StreamHandle

pytestmark = pytest.mark.integration
ProxyFactory = Callable[..., ProxyHandle]


def keys_for_shard(stream: StreamHandle, shard_index: int, n: int) -> list[str]:
    from streamkit import kinesis

    smap = kinesis.shard_map(stream.client, stream.name)
    target = smap.open_shards[shard_index].shard_id
    return [k for k in (f"key-{i}" for i in range(100 * n)) if smap.shard_for_key(k).shard_id == target][:n]


@pytest.mark.streamkit(shards=2)
def test_steady_writer_above_the_limit_is_accepted_at_the_limit_per_shard(
        kinesis_stream: StreamHandle, kinesis_proxy: ProxyFactory) -> None:
    proxy = kinesis_proxy(limit_scale=0.2)  # 200 records/s per shard
    client = proxy.client()
    keys = [k for i in range(2) for k in keys_for_shard(kinesis_stream, i, 50)]
    # Offer ~3x the limit on both shards; count what is accepted after the first second's burst allowance.
    accepted = 0
    start = time.monotonic()
    measured_from = None
    while time.monotonic() - start < 5.0:
        out = client.put_records(StreamName=kinesis_stream.name,
                                 Records=[{"Data": b"r" * 20, "PartitionKey": k} for k in keys])
        now = time.monotonic()
        if measured_from is None and now - start >= 1.0:
            measured_from, accepted = now, 0
        accepted += len(keys) - out["FailedRecordCount"]
        time.sleep(0.08)  # ~12 calls/s x 50 records per shard = ~600 offered per shard per second
    assert measured_from is not None
    rate_per_shard = accepted / (time.monotonic() - measured_from) / 2
    assert 180 <= rate_per_shard <= 220, rate_per_shard  # 200 +- 10%


@pytest.mark.streamkit(shards=1)
def test_put_records_failures_have_the_aws_shape(kinesis_stream: StreamHandle, kinesis_proxy: ProxyFactory) -> None:
    client = kinesis_proxy(limit_scale=0.01).client()  # 10 records/s
    out = client.put_records(StreamName=kinesis_stream.name,
                             Records=[{"Data": b"x", "PartitionKey": f"k{i}"} for i in range(25)])
    failed = [r for r in out["Records"] if "ErrorCode" in r]
    assert out["FailedRecordCount"] == len(failed) == 15
    assert all(r["ErrorCode"] == "ProvisionedThroughputExceededException" for r in failed)
    assert all("Rate exceeded for shard shardId-000000000000" in r["ErrorMessage"] for r in failed)
    ok = [r for r in out["Records"] if "ErrorCode" not in r]
    assert all(r["ShardId"] == "shardId-000000000000" and r["SequenceNumber"] for r in ok)


@pytest.mark.streamkit(shards=1)
def test_put_record_over_the_limit_raises_the_aws_error(kinesis_stream: StreamHandle, kinesis_proxy: ProxyFactory) -> None:
    client = kinesis_proxy(limit_scale=0.002).client()  # 2 records/s
    client.put_record(StreamName=kinesis_stream.name, Data=b"x", PartitionKey="a")
    client.put_record(StreamName=kinesis_stream.name, Data=b"x", PartitionKey="a")
    with pytest.raises(ClientError) as info:
        client.put_record(StreamName=kinesis_stream.name, Data=b"x", PartitionKey="a")
    err = info.value.response
    assert err["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert isinstance(info.value, client.exceptions.ProvisionedThroughputExceededException)


@pytest.mark.streamkit(shards=1)
def test_get_records_is_limited_to_five_calls_per_second(kinesis_stream: StreamHandle, kinesis_proxy: ProxyFactory) -> None:
    client = kinesis_proxy().client()
    it = client.get_shard_iterator(StreamName=kinesis_stream.name, ShardId="shardId-000000000000",
                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    outcomes = []
    for _ in range(8):
        try:
            it = client.get_records(ShardIterator=it)["NextShardIterator"]
            outcomes.append("ok")
        except client.exceptions.ProvisionedThroughputExceededException:
            outcomes.append("throttled")
    assert outcomes.count("ok") == 5 or outcomes.count("ok") == 6  # 5 + what refills during the calls
    assert "throttled" in outcomes


@pytest.mark.streamkit(shards=1)
def test_a_tenth_of_the_limits_still_serves_reads_and_writes(kinesis_stream: StreamHandle,
                                                             kinesis_proxy: ProxyFactory) -> None:
    """README's `--limit-scale 0.1`: 0.5 read calls/s per shard still lets one call through (it refused all)."""
    client = kinesis_proxy(limit_scale=0.1).client()
    client.put_record(StreamName=kinesis_stream.name, Data=b"x", PartitionKey="a")
    it = client.get_shard_iterator(StreamName=kinesis_stream.name, ShardId="shardId-000000000000",
                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert [r["Data"] for r in client.get_records(ShardIterator=it)["Records"]] == [b"x"]


@pytest.mark.streamkit(shards=1)
def test_limits_are_per_shard_of_each_stream_not_per_shard_id(kinesis_stream: StreamHandle, kinesis_proxy: ProxyFactory,
                                                              stream_factory: Callable[..., StreamHandle]) -> None:
    other = stream_factory(shards=1)  # its only shard has the same id, shardId-000000000000
    client = kinesis_proxy().client()

    def reads(stream: str, n: int) -> list[str]:
        it = client.get_shard_iterator(StreamName=stream, ShardId="shardId-000000000000",
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        out = []
        for _ in range(n):
            try:
                it = client.get_records(ShardIterator=it)["NextShardIterator"]
                out.append("ok")
            except client.exceptions.ProvisionedThroughputExceededException:
                out.append("throttled")
        return out

    assert "throttled" in reads(kinesis_stream.name, 8)  # this shard's five calls a second are spent
    assert reads(other.name, 5) == ["ok"] * 5  # the other stream's shard has its own


@pytest.mark.streamkit(shards=1)
def test_per_call_caps_are_enforced_before_the_backend(kinesis_stream: StreamHandle, kinesis_proxy: ProxyFactory) -> None:
    client = kinesis_proxy().client()
    with pytest.raises(ClientError) as info:
        client.put_records(StreamName=kinesis_stream.name, Records=[{"Data": b"x", "PartitionKey": "k"}] * 501)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    big = [{"Data": b"x" * (1024 * 1024 - 10), "PartitionKey": f"k{i}"} for i in range(6)]
    with pytest.raises(ClientError) as info:
        client.put_records(StreamName=kinesis_stream.name, Records=big)
    assert info.value.response["Error"]["Code"] == "InvalidArgumentException"
    it = client.get_shard_iterator(StreamName=kinesis_stream.name, ShardId="shardId-000000000000",
                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    with pytest.raises(ClientError) as info:
        client.get_records(ShardIterator=it, Limit=10_001)
    assert info.value.response["Error"]["Code"] == "ValidationException"


# Each fault kind at its configured rate. With n calls at probability p the count is binomial; the
# tolerance is 4 standard deviations (a false failure about once in 15,000 runs), and the seed makes
# a run repeatable.
def within(observed: int, n: int, p: float) -> bool:
    sd = (n * p * (1 - p)) ** 0.5
    return abs(observed - n * p) <= 4 * sd


@pytest.mark.streamkit(shards=1)
@pytest.mark.parametrize(("spec", "code", "status"), [("internal=0.2", "InternalFailure", 500),
                                                      ("unavailable=0.2", "ServiceUnavailable", 503),
                                                      ("throttle=0.2", "ProvisionedThroughputExceededException", 400)])
def test_call_faults_arrive_at_their_rate_with_aws_shapes(kinesis_stream: StreamHandle, kinesis_proxy: ProxyFactory,
                                                           spec: str, code: str, status: int) -> None:
    client = kinesis_proxy(limit_scale=100, faults=spec + ",seed=1").client()
    n, seen = 300, 0
    for i in range(n):
        try:
            client.put_record(StreamName=kinesis_stream.name, Data=b"x", PartitionKey=f"k{i}")
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == code
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == status
            seen += 1
    assert within(seen, n, 0.2), seen


@pytest.mark.streamkit(shards=1)
def test_connection_resets_arrive_at_their_rate(kinesis_stream: StreamHandle, kinesis_proxy: ProxyFactory) -> None:
    client = kinesis_proxy(limit_scale=100, faults="reset=0.1,seed=2").client()
    n, seen = 300, 0
    for i in range(n):
        try:
            client.put_record(StreamName=kinesis_stream.name, Data=b"x", PartitionKey=f"k{i}")
        except (ConnectionClosedError, EndpointConnectionError):
            seen += 1
    assert within(seen, n, 0.1), seen


@pytest.mark.streamkit(shards=1)
def test_per_entry_faults_arrive_at_their_rate(kinesis_stream: StreamHandle, kinesis_proxy: ProxyFactory) -> None:
    client = kinesis_proxy(limit_scale=100, faults="throttle=0.2,entry-failure=0.05,seed=3").client()
    codes: list[str] = []
    for _ in range(10):
        out = client.put_records(StreamName=kinesis_stream.name,
                                 Records=[{"Data": b"x", "PartitionKey": f"k{i}"} for i in range(200)])
        codes += [r.get("ErrorCode", "") for r in out["Records"]]
        assert out["FailedRecordCount"] == sum(1 for r in out["Records"] if "ErrorCode" in r)
    n = len(codes)
    assert within(codes.count("ProvisionedThroughputExceededException"), n, 0.2)
    assert within(codes.count("InternalFailure"), n, 0.8 * 0.05)  # drawn only for entries not throttled


@pytest.mark.streamkit(shards=1)
def test_expired_iterators_and_added_latency(kinesis_stream: StreamHandle, kinesis_proxy: ProxyFactory) -> None:
    proxy = kinesis_proxy(faults="expired=0.3,latency=20ms~30ms,seed=4")
    client = proxy.client()
    it = client.get_shard_iterator(StreamName=kinesis_stream.name, ShardId="shardId-000000000000",
                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    n, expired = 100, 0
    start = time.monotonic()
    for _ in range(n):
        try:
            client.get_records(ShardIterator=it)
        except client.exceptions.ExpiredIteratorException:
            expired += 1
        except client.exceptions.ProvisionedThroughputExceededException:
            pass
    elapsed = time.monotonic() - start
    assert within(expired, n, 0.3), expired
    assert elapsed >= n * 0.020  # every call waited at least the minimum added latency
    assert proxy.stats()["fault.expired"] == expired


@pytest.mark.streamkit(shards=1)
def test_get_records_returns_at_most_10_mib_then_refuses_the_shard_for_5_seconds(
        kinesis_stream: StreamHandle, kinesis_proxy: ProxyFactory) -> None:
    blob = b"x" * (1024 * 1024 - 10)
    for i in range(14):  # 14 MiB in the shard: kinesalite itself would return all of it in one call
        kinesis_stream.client.put_record(StreamName=kinesis_stream.name, PartitionKey=f"k{i}", Data=blob)
    proxy = kinesis_proxy()
    client = proxy.client()
    it = client.get_shard_iterator(StreamName=kinesis_stream.name, ShardId="shardId-000000000000",
                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    t0 = time.monotonic()
    first = client.get_records(ShardIterator=it)
    assert len(first["Records"]) == 10 and [r["PartitionKey"] for r in first["Records"]] == [f"k{i}" for i in range(10)]
    with pytest.raises(client.exceptions.ProvisionedThroughputExceededException):
        client.get_records(ShardIterator=first["NextShardIterator"])
    while True:  # the next call succeeds about 5 s after the 10 MiB one, and carries on after its last record
        try:
            rest = client.get_records(ShardIterator=first["NextShardIterator"])
            break
        except client.exceptions.ProvisionedThroughputExceededException:
            # A hang guard only: how soon after 5 s depends on the machine (the 10 MiB answer's own transfer
            # counts from t0); that the refusals end at all is what passes.
            assert time.monotonic() - t0 < 60
            time.sleep(0.1)
    assert time.monotonic() - t0 >= 5.0  # (t0 is before the 10 MiB call reached the proxy)
    assert [r["PartitionKey"] for r in rest["Records"]] == [f"k{i}" for i in range(10, 14)]
    assert proxy.stats().get("get_records.capped") == 1


@pytest.mark.streamkit(shards=1)
def test_an_arn_of_another_account_or_region_is_not_found_as_aws_answers(kinesis_stream: StreamHandle,
                                                                         kinesis_proxy: ProxyFactory) -> None:
    """Issue 24: the local us-east-1 stream was served for any account's or region's ARN."""
    client = kinesis_proxy().client()  # signed for us-east-1, the stack's region
    name = kinesis_stream.name
    own = f"arn:aws:kinesis:us-east-1:000000000000:stream/{name}"
    assert client.describe_stream_summary(StreamARN=own)["StreamDescriptionSummary"]["StreamName"] == name
    for arn in (f"arn:aws:kinesis:us-east-1:123456789012:stream/{name}",
                f"arn:aws:kinesis:eu-west-1:000000000000:stream/{name}"):
        with pytest.raises(client.exceptions.ResourceNotFoundException, match="not found"):
            client.describe_stream_summary(StreamARN=arn)
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.put_record(StreamARN=arn, Data=b"x", PartitionKey="k")
