"""An asyncio service with a producer in its lifespan loses nothing it accepted when SIGTERM stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.consumer import Consumer
from streamkit.records import StreamRecord
from streamkit.testing import StreamHandle

pytestmark = [pytest.mark.integration, pytest.mark.slow]
APP = Path(__file__).with_name("async_app.py")


@pytest.mark.streamkit(shards=2)
def test_sigterm_during_requests_flushes_every_accepted_reading(kinesis_stream: StreamHandle) -> None:
    proc = subprocess.Popen([sys.executable, str(APP), "--stream", kinesis_stream.name, "--endpoint",
                             kinesis_stream.stack.kinesis_endpoint], stdout=subprocess.PIPE, text=True,
                            env={**os.environ})
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "serving"
    # Signalled once 2,000 requests were accepted (counted by the app, not a second of wall time, which under
    # load held fewer): most of them still buffered or in flight when the signal comes.
    assert proc.stdout.readline().strip() == "busy 2000"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    accepted = int(out.split("accepted ")[1])
    assert accepted >= 2_000
    seqs: list[int] = []

    def collect(r: StreamRecord) -> None:
        seqs.append(orjson.loads(r.data)["seq"])

    Consumer(kinesis_stream.name, collect, application_name="check", checkpoint_store=MemoryCheckpointStore(),
             client=kinesis_stream.client).run(install_signal_handlers=False, stop_after_idle=1.5)
    assert sorted(seqs) == list(range(accepted))  # every accepted reading, once
