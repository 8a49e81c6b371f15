import random

import pytest

from gleitzeit_core.workflow.retry import RetryPolicy, Strategy


@pytest.mark.parametrize("strategy, expected", [
    (Strategy.FIXED, [2.0, 2.0, 2.0, 2.0, 2.0]),
    (Strategy.LINEAR, [2.0, 4.0, 6.0, 8.0, 10.0]),
    (Strategy.EXPONENTIAL, [2.0, 4.0, 8.0, 16.0, 32.0]),
])
def test_delay_per_strategy(strategy, expected):
    p = RetryPolicy(max_attempts=6, base_delay=2.0, max_delay=100.0, strategy=strategy)
    assert [p.delay(n) for n in range(1, 6)] == expected


def test_delay_is_capped_and_survives_huge_attempt_numbers():
    p = RetryPolicy(max_attempts=10_000, base_delay=1.0, max_delay=7.5)
    assert p.delay(4) == 7.5
    assert p.delay(5000) == 7.5


def test_jitter_stays_within_half_to_full_capped_delay():
    p = RetryPolicy(base_delay=4.0, max_delay=10.0, strategy=Strategy.EXPONENTIAL, jitter=True)
    rng = random.Random(7)
    samples = [p.delay(3, rng) for _ in range(500)]  # raw 16 → capped 10
    assert all(5.0 <= s <= 10.0 for s in samples)
    assert len(set(samples)) > 100


def test_max_attempts_counts_the_first_execution():
    p = RetryPolicy(max_attempts=3)
    assert [p.should_retry(n) for n in (1, 2, 3)] == [True, True, False]
    assert not RetryPolicy().should_retry(1)
