"""The fleet's ARM write budget (migrate.cloud.policies.WriteBudget): pure, over an injected clock."""

from __future__ import annotations

from migrate.cloud.policies import ARM_WRITES_PER_MINUTE, WriteBudget

SUB_A = "11111111-1111-1111-1111-111111111111"
SUB_B = "22222222-2222-2222-2222-222222222222"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_default_is_arms_documented_write_refill_rate() -> None:
    assert ARM_WRITES_PER_MINUTE == 600  # 10 writes per second per subscription (request-limits-and-throttling)


def test_writes_beyond_the_budget_wait_for_the_window_to_slide() -> None:
    clock = FakeClock()
    budget = WriteBudget(3, clock=clock, sleep=clock.sleep)
    assert [budget.try_acquire(SUB_A) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.try_acquire(SUB_A) == 60.0  # the oldest write leaves the window in 60 s
    clock.now += 20
    assert budget.try_acquire(SUB_A) == 40.0
    clock.now += 40  # the three writes of t=0 left the window together
    assert [budget.try_acquire(SUB_A) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.try_acquire(SUB_A) == 60.0


def test_acquire_sleeps_until_a_slot_is_free_and_accounts_the_wait() -> None:
    clock = FakeClock()
    budget = WriteBudget(2, clock=clock, sleep=clock.sleep)
    budget.acquire(SUB_A)
    clock.now += 10
    budget.acquire(SUB_A)
    budget.acquire(SUB_A)  # the third write in a minute waits for the first one to leave the window
    assert clock.slept == [50.0]
    assert budget.waited == {SUB_A: 50.0}


def test_each_subscription_has_its_own_budget() -> None:
    clock = FakeClock()
    budget = WriteBudget(1, clock=clock, sleep=clock.sleep)
    assert budget.try_acquire(SUB_A) == 0.0
    assert budget.try_acquire(SUB_A) > 0
    assert budget.try_acquire(SUB_B) == 0.0
    assert budget.try_acquire(SUB_A.upper()) > 0  # subscription ids are case-insensitive


def test_a_429_pauses_that_subscription_only_for_its_retry_after() -> None:
    clock = FakeClock()
    budget = WriteBudget(100, clock=clock, sleep=clock.sleep)
    budget.pause(SUB_A, 30)
    assert budget.try_acquire(SUB_A) == 30.0
    assert budget.try_acquire(SUB_B) == 0.0  # other subscriptions keep writing
    budget.pause(SUB_A, 5)  # a shorter pause does not shorten the longer one
    clock.now += 29
    assert budget.try_acquire(SUB_A) == 1.0
    budget.acquire(SUB_A)
    assert clock.slept == [1.0] and clock.now == 1030.0
