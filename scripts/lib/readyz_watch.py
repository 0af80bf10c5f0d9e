"""Poll a URL twice a second until stopped (SIGTERM/SIGINT); then print how many answers
were not 200, and when. scripts/test-beside-up runs it against the development edge's
/readyz while the test suite runs. Standard library only."""

from __future__ import annotations

import collections
import signal
import sys
import time
import urllib.error
import urllib.request
from types import FrameType

INTERVAL_SECONDS = 0.5


def status(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except OSError as exc:
        return type(exc).__name__


def main() -> None:
    url = sys.argv[1]
    counts: collections.Counter[str] = collections.Counter()
    failures: list[str] = []
    running = True

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started = time.monotonic()
    while running:
        tick = time.monotonic()
        answer = status(url)
        counts[answer] += 1
        if answer != "200":
            failures.append(f"{time.strftime('%H:%M:%S')} {answer}")
        time.sleep(max(0.0, INTERVAL_SECONDS - (time.monotonic() - tick)))
    total, bad = sum(counts.values()), sum(n for answer, n in counts.items() if answer != "200")
    print(f"{url}: {total} polls over {time.monotonic() - started:.0f} s, {bad} not 200 {dict(counts)}")
    for line in failures[:20]:
        print(f"  {line}")


if __name__ == "__main__":
    main()
