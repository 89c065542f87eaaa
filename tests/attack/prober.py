"""A separate process polling /healthz like a kubelet (new connection each time, 1 s timeout).

    python tests/attack/prober.py HOST PORT OUT.json      # until SIGTERM, then writes OUT.json

Standard library only, so it starts in milliseconds and shares nothing with the attackers.
"""

from __future__ import annotations

import http.client
import json
import signal
import sys
import time

PERIOD_S = 0.02


def main() -> None:
    host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    latencies: list[float] = []
    failures = 0
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        started = time.perf_counter()
        try:
            connection = http.client.HTTPConnection(host, port, timeout=1.0)
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            response.read()
            connection.close()
            if response.status != 200:
                failures += 1
            latencies.append(time.perf_counter() - started)
        except (OSError, http.client.HTTPException):
            failures += 1
        time.sleep(PERIOD_S)
    with open(out, "w") as handle:
        json.dump({"latencies": latencies, "failures": failures}, handle)


if __name__ == "__main__":
    main()
