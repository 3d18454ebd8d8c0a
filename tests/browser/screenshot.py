"""`make screenshots`: the README's picture of the console, taken against a fresh local stack.

    python -m tests.browser.screenshot docs/console.png
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from streamkit.local import stack as local_stack
from streamkit.local.console import ConsoleConfig, ConsoleServer
from streamkit.testing.stacks import local_client
from tests.browser.scenario import POISON, chrome, seed, shown


def main(out: Path) -> int:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory(prefix="streamkit-screenshot-") as tmp:
        work = Path(tmp)
        stack = local_stack.up(data_dir=work / "stack", persist=False)
        driver = None
        seeded = None
        try:
            kinesis, dynamodb = local_client("kinesis", stack.kinesis_endpoint), local_client("dynamodb", stack.dynamodb_endpoint)
            seeded = seed(kinesis, dynamodb, work)
            deadline = time.monotonic() + 60
            while not (seeded.dead_letters.exists() and seeded.dead_letters.read_text().strip()):
                if time.monotonic() > deadline:
                    raise SystemExit("the poison reading never reached the dead-letter file")
                time.sleep(0.2)
            config = ConsoleConfig(kinesis_endpoint=stack.kinesis_endpoint, dynamodb_endpoint=stack.dynamodb_endpoint,
                                   dead_letters=(f"file:{seeded.dead_letters}",), metrics_urls=(seeded.metrics_url,))
            driver = chrome(work / "profile")
            driver.set_window_size(1400, 1250)
            with ConsoleServer(config) as server:
                driver.get(server.url)
                wait = WebDriverWait(driver, 30)
                wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-shard]"))
                driver.find_elements(By.CSS_SELECTOR, "[data-shard]")[0].click()
                wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.record"))
                wait.until(lambda d: POISON in d.find_element(By.ID, "letters").text)
                wait.until(shown("leases", seeded.consumer.worker_id))
                wait.until(shown("metrics", "records_processed"))
                out.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(out))
        finally:
            if driver is not None:
                driver.quit()
            if seeded is not None:
                seeded.stop()
            local_stack.down(data_dir=work / "stack")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/console.png")))
