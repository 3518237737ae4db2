"""The dates tests live at: fixed, so no test moves with the calendar.

The session runs on a clock that starts at ``NOW`` and ticks (tests/conftest.py,
``session_clock``), in this process and, through ``subprocess_env``, in every Python process a
test starts. Simulated worlds start on fixed days, all before ``NOW``. A test that needs "now" to
be ``NOW`` itself, whatever day the session starts on, uses ``fixed_now`` or ``at_now``.
``make test-calendar`` runs the tests that once depended on the date (marker ``calendar``) with the
session started at three days months apart (``--today``), which shows the dates here, not the
day the tests run, decide every outcome.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import time_machine

# The instant tests take as "now": after every simulated world below.
NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
# Worlds that must end before NOW. Any of them may change only together with its test's
# expectations: a world's weekdays and the model trained on it follow from its start.
# The training test's 300-customer world: its average precision depends on the weekday it starts
# (0.045 on a Tuesday, 0.056 on a Monday, 0.162 on a Thursday, measured 2026-12-02), and the gate's
# floor is 0.05, so the test pins a Thursday, where only the drift gate may stop the model.
TRAINING_WORLD_START = "2026-07-09"
FRAUD_BYO_START = "2026-07-01"
# The fraud model tests' worlds start on the weekdays their thresholds were judged on
# (2026-11-27's runs: the small world on a Thursday, the backtest world on a Sunday).
MODEL_WORLD_START = "2026-07-09"
BACKTEST_WORLD_START = "2026-06-14"


@contextmanager
def at_now() -> Iterator[datetime]:
    """The platform's clock (``decisioning.core.events.utc_now``) starts at ``NOW`` and ticks on.

    Ticking keeps timeouts and durations inside the block working; only the date is fixed.
    """
    with time_machine.travel(NOW, tick=True):
        yield NOW


def subprocess_env(now: datetime = NOW) -> dict[str, str]:
    """Environment for a process the tests start whose clock should begin at ``now`` and tick.

    It works through ``tests/clock_site/sitecustomize.py`` and reaches every Python process the
    started one starts in turn (BentoML's workers, for instance).
    """
    site = str(Path(__file__).resolve().parents[1] / "clock_site")
    path = os.pathsep.join(p for p in (site, os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "RISK_TEST_CLOCK": now.isoformat()}
