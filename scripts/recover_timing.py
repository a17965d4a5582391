"""customerRecover's answer time for an address with an account and one without.

    TEST_DATABASE_URL=... TEST_REDIS_URL=... python scripts/recover_timing.py [N]

Against a migrated PostgreSQL and a Redis (the test services; it empties neither, and
uses addresses of its own), in process over ASGI, alternating known and unknown calls so
drift hits both alike. Limits are lifted so the throttle never answers; each call costs
the same as in production: count the request, mint a token, insert one sealed outbox
row. Prints the median and p90 of each, in milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from settings import Settings
from tests.client import SIGN_UP, running_app
from tests.conftest import FAST_PASSWORDS, TEST_PII_KEY

RECOVER = """mutation($email: String!) { customerRecover(input: {email: $email}) {
  userErrors { code } } }"""


async def main(calls: int) -> None:
    settings = Settings(
        environment="test",
        database_url=os.environ["TEST_DATABASE_URL"],
        redis_url=os.environ["TEST_REDIS_URL"],
        pii_encryption_keys=TEST_PII_KEY,
        rate_limit_capacity=1e9,
        rate_limit_restore_rate=1e9,
        login_failures_per_email=10**9,
        login_failures_per_client=10**9,
        **FAST_PASSWORDS,
    )
    known = f"timing-{time.time_ns()}@example.com"
    async with running_app(settings) as client:
        await client.query(SIGN_UP, {"email": known, "password": "long enough", "name": "T"})
        timings: dict[str, list[float]] = {"known": [], "unknown": []}
        for n in range(calls * 2 + 20):
            kind = "known" if n % 2 else "unknown"
            email = known if kind == "known" else f"nobody-{n}@example.com"
            started = time.perf_counter()
            result = await client.query(RECOVER, {"email": email})
            elapsed = (time.perf_counter() - started) * 1000
            assert result.body["data"]["customerRecover"]["userErrors"] == [], result.body
            if n >= 20:  # the first calls warm caches and pools
                timings[kind].append(elapsed)
    for kind, values in timings.items():
        p90 = statistics.quantiles(values, n=10)[-1]
        median = statistics.median(values)
        print(f"{kind:8} n={len(values)} median={median:.2f} ms p90={p90:.2f} ms")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
