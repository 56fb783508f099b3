"""Report how long each installation step took (CI runs `make test` on two cores)."""

from __future__ import annotations

from .venvs import TIMINGS


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not TIMINGS:
        return
    terminalreporter.section("installation steps (tests/install)")
    for step, seconds in TIMINGS:
        terminalreporter.write_line(f"{seconds:7.1f} s  {step}")
    terminalreporter.write_line(f"{sum(s for _, s in TIMINGS):7.1f} s  in all")
