"""What the console's browser test and `make screenshots` share: Debian's chromium, and a stack with a
stream of readings, a running consumer holding leases in DynamoDB, and a dead-letter file."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from producer import Producer, ProducerConfig
from streamkit import kinesis
from streamkit.checkpoints import DynamoDBCheckpointStore
from streamkit.consumer import Consumer, ConsumerConfig
from streamkit.records import StreamRecord

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# The flags that work here (no sandbox as root, nothing fetched from the network by the browser itself).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000")
POISON = "sensor-poison"


def chrome(user_data_dir: Path) -> Any:
    """A headless chromium driven through Debian's chromedriver, named explicitly (no Selenium Manager)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        raise RuntimeError(f"{' and '.join(missing)} missing: make browser installs Debian's chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={user_data_dir}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def put_readings(client: Any, stream: str, n: int, *, start: int = 0) -> None:
    config = ProducerConfig(record_max_buffered_time=0.01)
    with Producer(stream, client=client, config=config) as p:
        for i in range(start, start + n):
            p.put_json({"sensor_id": f"sensor-{i % 3}", "temp_c": 20 + i % 5, "seq": i}, partition_key=f"sensor-{i % 3}")


@dataclass
class Seeded:
    metrics_url: str
    stream: str
    table: str
    dead_letters: Path
    consumer: Consumer
    thread: threading.Thread

    def stop(self) -> None:
        self.consumer.stop()
        self.thread.join(30)


def seed(kinesis_client: Any, dynamodb_client: Any, workdir: Path, *, stream: str = "sensors") -> Seeded:
    """A 2-shard stream of readings (one poison), a consumer running on it with a DynamoDB lease table,
    and the poison reading in a dead-letter file once the consumer has given up on it."""
    kinesis_client.create_stream(StreamName=stream, ShardCount=2)
    kinesis.wait_for_stream(kinesis_client, stream)
    put_readings(kinesis_client, stream, 12)
    with Producer(stream, client=kinesis_client) as p:
        p.put_json({"sensor_id": POISON, "temp_c": "garbage"}, partition_key=POISON)
    dead = workdir / "dead-letters.jsonl"

    def handle(record: StreamRecord) -> None:
        if record.partition_key == POISON:
            raise ValueError("temp_c is not a number")

    from streamkit.local.stack import free_port

    port = free_port()
    table = f"{stream}-leases"
    store = DynamoDBCheckpointStore(table, client=dynamodb_client)
    consumer = Consumer(stream, handle, application_name="sensor-stats", checkpoint_store=store, client=kinesis_client,
                        config=ConsumerConfig(initial_position="TRIM_HORIZON", max_attempts=1, worker_id="worker-1",
                                              on_failure=f"file:{dead}"),
                        metrics=f"prometheus:{port}")

    def run() -> None:
        consumer.run(install_signal_handlers=False)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return Seeded(f"http://127.0.0.1:{port}/metrics", stream, table, dead, consumer, thread)


def shown(element_id: str, text: str) -> Any:
    """A WebDriverWait condition: the element shows `text` (case ignored), the page refreshed until it does."""
    from selenium.webdriver.common.by import By

    def check(driver: Any) -> bool:
        if text.lower() in driver.find_element(By.ID, element_id).text.lower():
            return True
        driver.find_element(By.ID, "refresh").click()
        return False

    return check
