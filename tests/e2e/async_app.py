"""A FastAPI-style asyncio service for the SIGTERM test: a producer opened in the app's lifespan, closed on shutdown.

It takes "requests" (readings) as fast as it can until SIGTERM, each one `await producer.send_json(...)`,
then leaves the lifespan, which flushes the producer, and prints how many requests it accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from producer import AsyncProducer, ProducerConfig
from streamkit.aws.clients import aws_client

#: Requests accepted before the app says it is busy (the SIGTERM test waits for that line, not for a time).
BUSY_AFTER = 2_000


@asynccontextmanager
async def lifespan(app: dict[str, Any], stream: str, endpoint: str) -> AsyncIterator[None]:
    client = aws_client("kinesis", endpoint_url=endpoint)
    async with AsyncProducer(stream, client=client, config=ProducerConfig()) as producer:
        app["producer"] = producer
        yield  # serving; leaving the block (shutdown) flushes what is buffered


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stream", required=True)
    ap.add_argument("--endpoint", required=True)
    args = ap.parse_args()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    app: dict[str, Any] = {}
    accepted = 0
    async with lifespan(app, args.stream, args.endpoint):
        print("serving", flush=True)
        while not stop.is_set():
            await app["producer"].send_json({"seq": accepted}, f"sensor-{accepted % 50}")
            accepted += 1
            if accepted == BUSY_AFTER:
                print(f"busy {accepted}", flush=True)  # the test signals only after this: mid-stream, by count
            if accepted % 500 == 0:
                await asyncio.sleep(0.005)  # requests arrive at a few tens of thousands a second
    print(f"accepted {accepted}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
