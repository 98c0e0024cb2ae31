"""No quiet skips in CI: under GENREC_STRICT=1 (which .ci/run exports) or CI=true, a skipped test
is reported as a failure, so a green CI means every test ran.

A user's ``make test`` may skip what the machine cannot run (no ../shared data, no chromium, no
PostgreSQL, a package that failed to install), each skip with its reason. In strict mode the same
skip fails and says what to install. A test that can never run on CI's machine (e.g. one that needs
a GPU) is marked ``@pytest.mark.allowed_skip(reason="...")``; only its skips stay skips.
GENREC_STRICT=0 turns strict mode off even where CI=true. xfail is not a skip and is left alone.

Loaded as a plugin by tests/conftest.py (``pytest_plugins``).
"""

from __future__ import annotations

import os

import pytest

STRICT_KEY = pytest.StashKey[bool]()
HINT = ("skips fail under GENREC_STRICT=1 / CI=true: install what the reason names (make install, make "
        "sysdeps as root, ../shared beside the clone) or mark a test that can never run in CI with "
        "@pytest.mark.allowed_skip(reason=...)")


def strict_from_env(env: os._Environ | dict = os.environ) -> bool:
    """GENREC_STRICT=1/0 decides when set; otherwise CI=true (or 1) turns strict mode on."""
    flag = env.get("GENREC_STRICT", "").strip()
    if flag:
        return flag == "1"
    return env.get("CI", "").strip().lower() in ("true", "1")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allowed_skip(reason): this test may skip even in CI (say why)")
    config.stash[STRICT_KEY] = strict_from_env()


def pytest_report_header(config: pytest.Config) -> str:
    return "strict skips: " + ("on (a skip is a failure)" if config.stash[STRICT_KEY] else "off")


def _skip_reason(report) -> str:
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:  # (path, line, "Skipped: reason")
        return str(lr[2]).removeprefix("Skipped: ")
    return str(lr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    rep = outcome.get_result()
    if (rep.skipped and not hasattr(rep, "wasxfail") and item.config.stash[STRICT_KEY]
            and item.get_closest_marker("allowed_skip") is None):
        rep.outcome = "failed"
        rep.longrepr = f"SKIPPED IN STRICT MODE: {_skip_reason(rep)}\n({HINT})"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """A module or conftest that skips itself while being collected (pytest.importorskip at the
    top of a file) is a collection error in strict mode."""
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and collector.config.stash[STRICT_KEY]:
        rep.outcome = "failed"
        rep.longrepr = f"SKIPPED IN STRICT MODE while collecting {collector.nodeid}: {_skip_reason(rep)}\n({HINT})"
