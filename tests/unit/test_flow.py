"""Flow-control arithmetic with explicit times: rates, token buckets, aging, queue shares."""

from __future__ import annotations

from collections import Counter

import pytest

from runner.errors import ConfigError
from runner.flow import (
    Rate,
    effective_priority,
    has_token,
    next_token_at,
    parse_rate,
    refill,
    weighted_next,
    weighted_pick,
    weighted_run,
    weighted_step,
)
from runner.runner_huey import RunnerHuey
from runner.settings_loader import load_settings
from runner.task import RunnerTaskWrapper
from runner.task_options import task_flow

T0 = 1_700_000_000.0


# -- rates -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "per_second", "burst"), [
    ("100/m", 100 / 60, 1), ("5/s", 5.0, 1), ("1000/h", 1000 / 3600, 1),
    ("10/30s", 10 / 30, 1), ("100/m burst 20", 100 / 60, 20), ("2.5 / sec", 2.5, 1),
    ("200/s", 200, 20),  # by default, 100 ms of the rate when that is more than one
    ("200/s burst 1", 200, 1),
])
def test_a_rate_is_read_from_count_per_unit_with_an_optional_burst(text, per_second, burst):
    rate = parse_rate(text)
    assert rate.per_second == pytest.approx(per_second) and rate.burst == burst


@pytest.mark.parametrize("text", ["fast", "100", "100/fortnight", "0/s", "5/s burst 0", ""])
def test_a_bad_rate_is_refused_saying_how_to_write_one(text):
    with pytest.raises(ValueError, match="rate|positive"):
        parse_rate(text)


def test_a_separate_burst_sets_the_burst_the_text_leaves_out():
    assert parse_rate("100/m", burst=5).burst == 5
    assert parse_rate("100/m burst 20", burst=20).burst == 20  # the same burst twice


def test_a_separate_burst_that_differs_from_the_texts_is_refused_naming_both():
    with pytest.raises(ValueError, match="'100/m burst 20' has burst 20 but burst = 5"):
        parse_rate("100/m burst 20", burst=5)


# -- token bucket ----------------------------------------------------------------------


def test_a_new_bucket_is_full():
    assert refill(None, T0, T0, Rate(5, 1, burst=3)) == 3


def test_a_bucket_refills_at_the_rate_up_to_its_burst():
    rate = Rate(10, 1, burst=4)
    assert refill(0.0, T0, T0 + 0.25, rate) == pytest.approx(2.5)
    assert refill(0.0, T0, T0 + 60, rate) == 4


def test_a_clock_going_backwards_takes_no_tokens_away():
    assert refill(0.5, T0, T0 - 10, Rate(1, 1, burst=2)) == 0.5


def test_the_next_token_time_is_computed_not_polled_for():
    rate = Rate(20, 1)
    assert next_token_at(0.0, T0, rate) == pytest.approx(T0 + 0.05)
    assert next_token_at(0.5, T0, rate) == pytest.approx(T0 + 0.025)
    assert next_token_at(1.0, T0, rate) == T0


def test_a_worker_wanting_several_jobs_waits_for_that_many_tokens_up_to_the_burst():
    rate = Rate(100, 1, burst=4)
    assert next_token_at(0.0, T0, rate, need=3) == pytest.approx(T0 + 0.03)
    assert next_token_at(0.0, T0, rate, need=50) == pytest.approx(T0 + 0.04)  # the burst
    assert next_token_at(3.0, T0, rate, need=3) == T0


def test_spending_a_token_per_start_gives_the_rate_over_a_minute():
    rate, tokens, updated, starts = parse_rate("100/m"), None, T0, 0
    now = T0
    while now < T0 + 60:
        tokens = refill(tokens, updated, now, rate)
        updated = now
        if has_token(tokens, rate):
            tokens -= 1
            starts += 1
            continue
        now = next_token_at(tokens, now, rate)
    assert starts == 100  # the full bucket's one token at T0, then one per 0.6 s up to 59.4 s


# -- aging -----------------------------------------------------------------------------


def test_a_waiting_job_gains_one_level_per_aging_period():
    assert effective_priority(0, T0, T0 + 59, 60) == 0
    assert effective_priority(0, T0, T0 + 60, 60) == 1
    assert effective_priority(2, T0, T0 + 3600, 60) == 62


def test_aging_zero_or_a_job_not_yet_due_keeps_its_priority():
    assert effective_priority(3, T0, T0 + 10_000, 0) == 3
    assert effective_priority(3, T0 + 100, T0, 1) == 3


# -- queue shares ----------------------------------------------------------------------


def test_weighted_picks_give_each_queue_its_share_interleaved():
    weights, counters, picks = {"a": 5, "b": 1, "c": 1}, {}, []
    for _ in range(70):
        chosen, counters = weighted_pick(counters, weights, ["a", "b", "c"])
        picks.append(chosen)
    assert Counter(picks) == {"a": 50, "b": 10, "c": 10}
    assert picks[:7] == ["a", "a", "b", "a", "c", "a", "a"]  # smooth: no long runs of a


def test_a_queue_without_work_leaves_the_shares_of_the_others():
    counters, picks = {}, []
    for _ in range(30):
        chosen, counters = weighted_pick(counters, {"a": 2, "b": 1, "idle": 7}, ["a", "b"])
        picks.append(chosen)
    assert Counter(picks) == {"a": 20, "b": 10}


def test_a_pick_in_place_matches_the_pure_pick_and_the_look_ahead():
    weights, pure, in_place = {"a": 3, "b": 2}, {}, {}
    for _ in range(20):
        ahead = weighted_next(in_place, weights, ["a", "b"])
        chosen, pure = weighted_pick(pure, weights, ["a", "b"])
        assert weighted_step(in_place, weights, ["a", "b"]) == chosen == ahead
        assert in_place == pure


def test_runs_of_picks_keep_each_queues_share_over_consecutive_runs():
    weights, counters, taken = {"a": 4, "b": 3, "c": 2, "d": 1}, {}, Counter()
    queues = ["a", "b", "c", "d"]
    runs = []
    for n in range(200):
        size = (64, 16, 40)[n % 3]  # runs of any size, as claims are
        chosen = weighted_run(counters, weights, queues, size)
        taken[chosen] += size
        runs.append(chosen)
    total = sum(taken.values())
    for name, weight in weights.items():  # to within one run of the largest size
        assert abs(taken[name] - total * weight / 10) <= 64, (name, taken)
    assert len(set(runs[:10])) == 4  # every queue has its turn within a round


def test_a_run_of_one_pick_is_a_weighted_step():
    weights, by_run, by_step = {"a": 3, "b": 2}, {}, {}
    for _ in range(20):
        assert weighted_run(by_run, weights, ["a", "b"], 1) == weighted_step(
            by_step, weights, ["a", "b"])
        assert by_run == by_step


def test_picking_from_no_queue_is_an_error():
    with pytest.raises(ValueError):
        weighted_pick({}, {}, [])


# -- settings and decorators -----------------------------------------------------------


def test_queue_sections_are_typed_and_default_is_always_there(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text('[worker]\npriority_aging = 120\n[queues.mail]\nweight = 3\n'
                    'concurrency = 2\nrate_limit = "100/m"\nburst = 10\n')
    settings = load_settings(path, environ={})
    assert set(settings.queues) == {"default", "mail"}
    mail = settings.queues["mail"]
    assert (mail.weight, mail.concurrency, mail.rate, mail.on_full) == (
        3, 2, Rate(100, 60, burst=10), "block")
    assert settings.queue_section("other").weight == 1
    limits = RunnerHuey("limits-from-settings").task_registry.flow_limits(settings)
    assert limits.weights == {"default": 1, "mail": 3}
    assert (limits.queue_concurrency, limits.aging) == ({"mail": 2}, 120)


def test_all_weights_one_means_priority_order_across_queues(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("[queues.mail]\nconcurrency = 1\n")
    limits = RunnerHuey("no-shares").task_registry.flow_limits(load_settings(path, environ={}))
    assert limits.weights == {}


def test_a_bad_queue_name_is_refused(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text('[queues."no spaces"]\nweight = 2\n')
    with pytest.raises(ConfigError, match="not a valid queue name"):
        load_settings(path, environ={})


def test_task_limits_are_checked_when_decorated():
    with pytest.raises(ConfigError, match="concurrency must be a whole number"):
        task_flow("t", 0, None, None)
    with pytest.raises(ConfigError, match="concurrency_key needs concurrency"):
        task_flow("t", None, lambda user: user, None)
    with pytest.raises(ConfigError, match="task 't': rate_limit"):
        task_flow("t", None, None, "lots")


def test_task_limits_reach_the_claim_by_task_name(tmp_path):
    huey = RunnerHuey("task-limits")

    def report(): ...

    def sync(user_id): ...

    RunnerTaskWrapper(huey, report, name="report", options={},
                      flow=task_flow("report", 1, None, "5/s"))
    RunnerTaskWrapper(huey, sync, name="sync", options={},
                      flow=task_flow("sync", 2, lambda user_id: user_id, None))
    limits = huey.task_registry.flow_limits(_defaults(tmp_path))
    assert limits.task_concurrency == {"report": 1}
    assert limits.key_concurrency == {"sync": 2}
    assert limits.task_rates == {"report": Rate(5, 1)}
    assert huey.task_registry.find("sync").flow.key_of((42,), {}) == "42"


def _defaults(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("")
    return load_settings(path, environ={})
