"""PyTorch DDP through the one trainer: 2 real processes (gloo on 127.0.0.1, 1 thread each).

- 2 processes with batches of B give the parameters of 1 process with batches of 2B (SASRec's
  loss, GPT4Rec's packed LM loss on a scratch GPT-2, and the same under LoRA);
- only rank 0 writes the checkpoint, and it loads in one process;
- a rank that dies makes the other fail with a clear error, not hang;
- ``genrec train --nproc 2`` re-launches itself under torch.distributed.run and saves a model
  that loads and recommends in one process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).parent))
import ddp_worker  # noqa: E402

from genrec.training import distributed  # noqa: E402

WORKER = Path(__file__).with_name("ddp_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def _launch(out: Path, cases: list[str], extra: dict | None = None, timeout: float = 120) -> list:
    """Rank 0 and rank 1 as plain processes (no supervising launcher: what they do on a peer's
    failure is their own doing). Returns (return code, stderr) per rank."""
    port = distributed.free_port()
    procs = []
    for r in (0, 1):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "WORLD_SIZE": "2", "RANK": str(r), "LOCAL_RANK": str(r), "OMP_NUM_THREADS": "1",
               "GENREC_DDP_TIMEOUT": "20", **(extra or {})}
        procs.append(subprocess.Popen([sys.executable, str(WORKER), str(out), *cases], env=env, cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    res = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"a DDP worker hung for more than {timeout} s")
        res.append((p.returncode, err))
    return res


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    res = _launch(out, ["sasrec", "gpt2", "lora"])
    for r, (rc, err) in enumerate(res):
        assert rc == 0, f"rank {r} failed:\n{err[-3000:]}"
    return out


@pytest.mark.parametrize("case", ["sasrec", "gpt2", "lora"])
def test_two_processes_equal_one_process_with_twice_the_batch(ddp_run, case):
    torch.set_num_threads(1)
    rank0 = torch.load(ddp_run / f"{case}_rank0.pt")
    rank1 = torch.load(ddp_run / f"{case}_rank1.pt")
    one = ddp_worker.CASES[case](1)
    assert rank0.keys() == one.keys()
    for k in one:
        assert torch.equal(rank0[k], rank1[k]), f"{case}: ranks disagree on {k}"
        torch.testing.assert_close(rank0[k], one[k], atol=2e-5, rtol=1e-4, msg=f"{case}: {k}")
    # Training moved the weights by far more than the tolerance, so the comparison can fail: one
    # process on rank 0's half of the data alone ends elsewhere.
    half = _half(case)
    assert max(float((rank0[k] - half[k]).abs().max()) for k in one) > 1e-3


def _half(case: str) -> dict:
    """One process trained on rank 0's batches only (what a run without gradient sync would give)."""
    orig = ddp_worker._order
    try:
        ddp_worker._order = lambda world, rng: orig(2, rng)[0::2]
        return ddp_worker.CASES[case](1)
    finally:
        ddp_worker._order = orig


def test_only_rank0_writes_the_checkpoint_and_it_loads_in_one_process(ddp_run):
    from genrec.models.baselines.sasrec import SASRec
    from genrec.training import checkpoint as ckpt_io

    for case in ("sasrec", "gpt2", "lora"):
        assert (ddp_run / f"ckpt_{case}_rank0" / ckpt_io.CHECKPOINT_FILE).is_file()
        assert not (ddp_run / f"ckpt_{case}_rank1").exists()
    saved = ckpt_io.load(ddp_run / "ckpt_sasrec_rank0" / ckpt_io.CHECKPOINT_FILE)
    assert saved["fingerprint"]["processes"] == 2 and saved["progress"]["step"] == ddp_worker.STEPS
    net = SASRec(max_len=8, hidden=16, layers=1, heads=1, dropout=0.0)._build_net(30)
    net.load_state_dict(saved["model"])  # strict: the bare network's keys, no DDP prefix
    final = torch.load(ddp_run / "sasrec_rank0.pt")
    for k, v in net.state_dict().items():
        assert torch.equal(v, final[k])


def test_a_dying_rank_fails_the_run_clearly_instead_of_hanging(tmp_path):
    t = time.monotonic()
    (rc0, err0), (rc1, err1) = _launch(tmp_path, ["sasrec"], {distributed.DIE_RANK_ENV: "1",
                                                              distributed.DIE_STEP_ENV: "2"}, timeout=90)
    assert rc1 == 1 and "dying at step 2" in err1
    assert rc0 != 0
    assert "another training process failed or stopped answering" in err0, err0[-2000:]
    assert time.monotonic() - t < 60
    assert not (tmp_path / "sasrec_rank0.pt").exists()


def test_cli_nproc_relaunches_under_torchrun_and_rank0_saves(tmp_path):
    from genrec.models.registry import load_model

    out = tmp_path / "model"
    cmd = [sys.executable, "-m", "genrec.cli", "train", "-m", "sasrec", "-d", "demo", "--nproc", "2", "--threads", "1",
           "-p", "epochs=1", "-p", "min_steps=0", "-p", "hidden=16", "-p", "layers=1", "-p", "valid_users=20",
           "-p", "progress=false", "-p", "bf16=false", "--no-evaluate", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.count("demo (SYNTHETIC)") == 1  # only rank 0 printed
    m = load_model(out)
    assert m.fit_info_["steps"] >= 1
    recs = m.recommend([m.catalog.ids[:3]], k=5)
    assert len(recs.items[0]) == 5


def test_nproc_on_a_model_without_torch_is_a_usage_error():
    r = subprocess.run([sys.executable, "-m", "genrec.cli", "train", "-m", "pop", "--nproc", "2", "--out", "/tmp/x"],
                       capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and "does not train a torch network" in r.stderr and "Traceback" not in r.stderr
