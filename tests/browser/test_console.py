"""The console in a real headless browser (Debian's chromium through its chromedriver), as a person uses
it: the page loads, a shard's records appear and a followed shard shows a record put afterwards, the
lease table shows the running consumer as owner, and dead letters are replayed from the page, one from a
file and one from an SQS queue (moto's server) (about 20 s).
A failure saves a screenshot and names it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamkit.destinations import DeadLetter
from streamkit.local.console import ConsoleConfig, ConsoleServer
from streamkit.positions import parse_position
from streamkit.records import StreamRecord
from streamkit.tail import Tail, TailConfig
from tests.browser.scenario import POISON, chrome, seed, shown

QUEUED = "sensor-queued-poison"

pytestmark = pytest.mark.integration


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll `check` until it is truthy (a bound on a hang, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


def test_the_console_shows_records_leases_and_replays_a_dead_letter(local_stack: Any, kinesis_client: Any,
                                                                    dynamodb_client: Any, tmp_path: Path,
                                                                    sqs_client: Any, sqs_endpoint: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chrome(tmp_path / "profile")  # first: a missing browser fails here, in one line, before anything starts
    stream = f"console-{tmp_path.name[-8:].replace('_', '-')}"
    seeded = seed(kinesis_client, dynamodb_client, tmp_path, stream=stream)
    source = f"file:{seeded.dead_letters}"
    queue = sqs_client.create_queue(QueueName=f"dlq-{stream}")["QueueUrl"]
    arn = kinesis_client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    queued = StreamRecord(b'{"sensor_id": "' + QUEUED.encode() + b'", "temp_c": "bad"}', QUEUED, "1",
                          shard_id="shardId-000000000000", event_source_arn=arn)
    sqs_client.send_message(QueueUrl=queue, MessageBody=orjson.dumps(
        DeadLetter(record=queued, error="ValueError('bad')", attempts=1).to_json()).decode())
    config = ConsoleConfig(kinesis_endpoint=local_stack.kinesis_endpoint, dynamodb_endpoint=local_stack.dynamodb_endpoint,
                           dead_letters=(source, f"sqs:{queue}"), metrics_urls=(seeded.metrics_url,),
                           sqs_endpoint=sqs_endpoint)
    try:
        wait_for("the poison reading in the dead-letter file",
                 lambda: seeded.dead_letters.exists() and seeded.dead_letters.read_text().strip())
        with ConsoleServer(config) as server:
            driver.get(server.url)
            wait = WebDriverWait(driver, 30)
            css = By.CSS_SELECTOR
            wait.until(ec.presence_of_element_located((css, f'[data-stream="{stream}"]')))
            shard = kinesis_client.list_shards(StreamName=stream)["Shards"][0]
            driver.find_element(css, f'[data-shard="{stream}/{shard["ShardId"]}"]').click()
            wait.until(lambda d: d.find_elements(css, "tr.record"))
            assert '"sensor_id"' in driver.find_element(By.ID, "records").text
            # Follow: a record put into that shard after the page showed it appears without a click.
            driver.find_element(By.ID, "follow").click()
            kinesis_client.put_record(StreamName=stream, Data=b'{"sensor_id": "followed-after"}', PartitionKey="x",
                                      ExplicitHashKey=shard["HashKeyRange"]["StartingHashKey"])
            wait.until(lambda d: "followed-after" in d.find_element(By.ID, "records").text)
            # The lease table names the running consumer as owner.
            wait.until(shown("leases", seeded.consumer.worker_id))
            # The consumer's Prometheus endpoint, read by the console.
            wait.until(shown("metrics", "records_processed"))
            # Replay the dead letter from the page, confirming the dialog.
            wait.until(lambda d: POISON in d.find_element(By.ID, "letters").text)
            driver.find_element(css, f'[data-replay="{source}"]').click()
            wait.until(ec.alert_is_present()).accept()
            wait.until(lambda d: "replayed 1 record(s)" in d.find_element(By.ID, "replayed").text)
            # The queue's letter, shown (looking takes nothing from the queue) and replayed the same way; the
            # first replay's message is cleared so that the wait below sees the second one's.
            wait.until(lambda d: QUEUED in d.find_element(By.ID, "letters").text)
            driver.execute_script('document.getElementById("replayed").textContent = ""')
            driver.find_element(css, f'[data-replay="sqs:{queue}"]').click()
            wait.until(ec.alert_is_present()).accept()
            wait.until(lambda d: "replayed 1 record(s)" in d.find_element(By.ID, "replayed").text)
        back = list(Tail(stream, client=kinesis_client, config=TailConfig(position=parse_position("trim-horizon"))).records())
        assert len([r for r in back if r.partition_key == POISON]) == 2  # the original and the replayed copy
        assert [r.data for r in back if r.partition_key == QUEUED] == [queued.data]  # replayed from the queue, once
    except BaseException:
        shot = tmp_path / "console-failure.png"
        driver.save_screenshot(str(shot))
        print(f"screenshot of the failure: {shot}")
        raise
    finally:
        driver.quit()
        seeded.stop()
