"""Shared fixtures: the synthetic demo shop (small) and paths to ../shared/datasets."""

import os
from pathlib import Path

# OpenMP threads that spin while waiting make torch 10-30x slower whenever another process shares
# the cores (measured: one SmolLM2 forward 11 s vs 0.4 s). Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

# strict_skips: under GENREC_STRICT=1 or CI=true every skip fails (see that module); pytester: its
# own test runs real sub-pytests.
pytest_plugins = ("pytester", "tests.strict_skips")

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def shared_dataset(name: str) -> Path:
    """Path to a dataset under ../shared/datasets, or skip the test (a failure in strict mode)."""
    p = SHARED / name
    if not p.is_dir():
        pytest.skip(f"{p} not present (real data lives in ../shared/datasets)")
    return p


@pytest.fixture(scope="session")
def demo_small():
    from genrec.data.loaders.demo import make_demo_shop

    return make_demo_shop(n_users=400, items_per_type=12, seed=3)


@pytest.fixture(scope="session")
def demo_loo(demo_small):
    from genrec.data.splits import make_split

    return make_split(demo_small.preprocess("standard"), "loo", seed=0)


@pytest.fixture(scope="session")
def demo_user(demo_small):
    from genrec.data.splits import make_split

    return make_split(demo_small.preprocess("gpt4rec"), "user", seed=0)
