"""The load test (`make bench`): 10,000 requests at concurrency 16, zero errors, memory flat.

A robustness check, not a timing assertion: it fails on any error response or on server memory that
keeps growing after warm-up, never on how fast the requests were served. Deselected from the default
run (``addopts = "-m 'not load'"``); run it with ``pytest -m load tests/test_load.py``.
"""

from __future__ import annotations

import pytest

from bench.load import report, run_load

REQUESTS = 10_000
CONCURRENCY = 16
TIME_LIMIT_S = 1500.0  # ~35 req/s on 2 cores: ~5 min; the limit only bounds a hung server
MAX_GROWTH_MB = 50.0


@pytest.mark.slow
@pytest.mark.load
def test_10k_requests_at_concurrency_16_no_errors_memory_flat() -> None:
    result = run_load(REQUESTS, CONCURRENCY, TIME_LIMIT_S, warmup=1_000)
    print(report(result))
    assert not result.timed_out, report(result)
    assert result.requests == REQUESTS
    assert result.errors == 0, result.error_kinds
    assert result.growth_after_warmup_mb < MAX_GROWTH_MB, report(result)
