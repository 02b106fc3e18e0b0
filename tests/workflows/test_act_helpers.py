"""The act runner's own judgement: which failures of act are its start-up race, worth one more run."""

from __future__ import annotations

from act_helpers import ACT_RACE, crashed_before_any_step

STEP = "[report/pr-report/reproduce] ⭐ Run Main make repro\n"


def test_the_race_before_any_step_is_a_crash_of_act():
    assert crashed_before_any_step(f"[report/pr-report/reproduce] 🚀  Start image=-self-hosted\n{ACT_RACE}\n")


def test_a_failure_after_a_step_ran_is_never_retried():
    assert not crashed_before_any_step(f"{STEP}{ACT_RACE}\n"), "a step may have had effects"
    assert not crashed_before_any_step(f"{STEP}Error: Job 'gate' failed\n")
    assert not crashed_before_any_step("")
