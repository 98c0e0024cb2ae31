"""The trainer on a tiny real network: limits, early stopping, best-state restore, exact resume,
fingerprints, gradient accumulation and the untouched global generators."""

from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from genrec.training import EarlyStopping, TrainerConfig  # noqa: E402
from genrec.training.checkpoint import CheckpointMismatch  # noqa: E402
from genrec.training.module import TrainableModule  # noqa: E402
from genrec.training.trainer import Trainer  # noqa: E402


class Regression(TrainableModule):
    """y = X w + noise with a dropout MLP; validation: minus the held-out MSE. ``scripted``
    replaces the metric by given values (to steer early stopping); every evaluation keeps a
    copy of the weights it saw."""

    def __init__(self, n: int = 96, batch: int = 8, hidden: int = 16, seed: int = 0, sleep: float = 0.0,
                 scripted: list[float] | None = None, lr: float = 0.05) -> None:
        g = np.random.default_rng(seed)
        self.x = g.normal(size=(n, 4)).astype(np.float32)
        self.y = (self.x @ np.array([1.0, -2.0, 0.5, 3.0], dtype=np.float32) + 0.1 * g.normal(size=n)).astype(np.float32)
        self.batch, self.hidden, self.sleep, self.lr = batch, hidden, sleep, lr
        self.scripted, self.seen = scripted, []
        self.net = None

    def build(self):
        self.net = torch.nn.Sequential(torch.nn.Linear(4, self.hidden), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                       torch.nn.Linear(self.hidden, 1))
        return self.net

    def optimizer(self, net):
        return torch.optim.AdamW(net.parameters(), lr=self.lr)

    def scheduler(self, optimizer, total_steps):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.1, 1 - s / total_steps))

    def batches(self, epoch, rng):
        order = rng.permutation(len(self.x))
        return [order[i:i + self.batch] for i in range(0, len(order), self.batch)]

    def loss(self, net, batch, rng):
        if self.sleep:
            time.sleep(self.sleep)
        noise = torch.as_tensor(rng.normal(scale=0.01, size=len(batch)), dtype=torch.float32)
        pred = net(torch.as_tensor(self.x[batch]))[:, 0]
        return torch.mean((pred - torch.as_tensor(self.y[batch]) - noise) ** 2)

    def validate(self, net):
        self.seen.append({k: v.clone() for k, v in net.state_dict().items()})
        if self.scripted is not None:
            return {"score": self.scripted[len(self.seen) - 1]}
        with torch.no_grad():
            pred = net(torch.as_tensor(self.x[:32]))[:, 0]
        return {"score": -float(torch.mean((pred - torch.as_tensor(self.y[:32])) ** 2))}

    def fingerprint(self):
        return {"hidden": self.hidden, "batch": self.batch}


def cfg(**kw) -> TrainerConfig:
    base = dict(max_epochs=5, valid_metric="score", progress=False, device="cpu", precision=False, seed=3)
    return TrainerConfig(**{**base, **kw})


def params(net) -> list:
    return [p.detach().clone() for p in net.parameters()]


def test_loss_falls_and_result_reports_what_happened():
    net, res = Trainer(cfg(max_epochs=4)).fit(Regression())
    assert res.stop_reason == "max_epochs" and res.epochs_run == 4 and res.steps == 4 * 12
    assert res.history[-1]["loss"] < res.history[0]["loss"] / 2
    assert [r["epoch"] for r in res.history] == [1, 2, 3, 4] and res.precision == "fp32"
    info = res.fit_info()
    assert set(info) == {"epochs_run", "best_epoch", "stop_reason", "precision", "steps", "train_seconds"}
    assert not net.training


def test_early_stopping_keeps_the_best_evaluation_and_restores_its_weights():
    m = Regression(scripted=[0.1, 0.3, 0.25, 0.29, 0.2, 0.9, 0.95])
    net, res = Trainer(cfg(max_epochs=20, eval_every=3, patience=3)).fit(m)
    assert res.stop_reason == "early_stopping" and res.steps == 15 and len(res.history) == 5
    assert res.best_step == 6 and res.best_metric == 0.3 and res.best_epoch == 1
    for got, want in zip(net.state_dict().values(), m.seen[1].values()):
        assert torch.equal(got, want)
    assert not all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), m.seen[-1].values()))


def test_min_steps_and_min_delta_make_stopping_less_eager():
    scripted = [0.1, 0.3, 0.301, 0.302, 0.303, 0.304, 0.305, 0.306, 0.307]
    _, res = Trainer(cfg(max_epochs=20, eval_every=2, patience=2, min_delta=0.01)).fit(Regression(scripted=scripted))
    assert res.stop_reason == "early_stopping" and res.steps == 8  # tiny gains do not reset patience
    _, res = Trainer(cfg(max_epochs=20, eval_every=2, patience=2, min_delta=0.01, min_steps=14)).fit(
        Regression(scripted=scripted))
    assert res.steps == 14 and res.best_metric == 0.305  # the 7th evaluation


def test_early_stopping_rule():
    s = EarlyStopping(patience=2, min_delta=0.0, smoothing=0.5)
    assert s.update(1.0) and not s.should_stop
    assert not s.update(0.0) and s.bad == 1  # smoothed 0.5 < 1.0
    assert s.update(3.0) and s.bad == 0      # smoothed 1.75 > 1.0
    assert not s.update(0.0) and not s.update(0.0) and s.should_stop
    assert EarlyStopping(patience=None).should_stop is False


def test_max_steps_and_time_budget_stop_training():
    _, res = Trainer(cfg(max_epochs=None, max_steps=7)).fit(Regression())
    assert res.stop_reason == "max_steps" and res.steps == 7 and res.epochs_run == 1
    assert res.history[-1]["step"] == 7  # validated once more at the end
    t = time.perf_counter()
    _, res = Trainer(cfg(max_epochs=100, time_budget=0.3)).fit(Regression(sleep=0.02))
    assert res.stop_reason == "time_budget" and 0.3 <= res.train_seconds < 1.5
    assert time.perf_counter() - t < 3 and 5 <= res.steps < 100 * 12


def test_resume_is_exact(tmp_path):
    kw = dict(max_epochs=3, eval_every=5, grad_accum=2, max_grad_norm=1.0)
    straight, r1 = Trainer(cfg(**kw)).fit(Regression())
    _, part = Trainer(cfg(**kw, max_steps=7, checkpoint_dir=str(tmp_path))).fit(Regression())
    assert part.stop_reason == "max_steps" and part.steps == 7
    resumed, r2 = Trainer(cfg(**kw, checkpoint_dir=str(tmp_path))).fit(Regression())
    assert r2.resumed_from_step == 7 and r2.steps == r1.steps == 18
    assert all(torch.equal(a, b) for a, b in zip(params(straight), params(resumed)))
    at = {r["step"]: r["score"] for r in r2.history}  # the stopped run was also validated at its last step
    assert [at[r["step"]] for r in r1.history] == [r["score"] for r in r1.history]
    # a finished run resumed again trains no further and gives the same weights
    again, r3 = Trainer(cfg(**kw, checkpoint_dir=str(tmp_path))).fit(Regression())
    assert r3.steps == 18 and all(torch.equal(a, b) for a, b in zip(params(again), params(resumed)))


def test_fingerprint_mismatch_refuses_resume(tmp_path):
    Trainer(cfg(max_epochs=1, checkpoint_dir=str(tmp_path))).fit(Regression())
    with pytest.raises(CheckpointMismatch, match=r"another model configuration.*module.hidden: checkpoint 16, now 8"):
        Trainer(cfg(max_epochs=2, checkpoint_dir=str(tmp_path))).fit(Regression(hidden=8))
    with pytest.raises(CheckpointMismatch, match="seed"):
        Trainer(cfg(max_epochs=2, seed=4, checkpoint_dir=str(tmp_path))).fit(Regression())


def test_gradient_accumulation_equals_a_larger_batch():
    a, _ = Trainer(cfg(max_epochs=1, grad_accum=2)).fit(Regression(batch=8, hidden=4, lr=0.05))
    m = Regression(batch=16, hidden=4, lr=0.05)
    m.loss = lambda net, batch, rng: torch.mean(
        (net(torch.as_tensor(m.x[batch]))[:, 0] - torch.as_tensor(m.y[batch])) ** 2)  # no per-batch noise
    m2 = Regression(batch=8, hidden=4, lr=0.05)
    m2.loss = lambda net, batch, rng: torch.mean(
        (net(torch.as_tensor(m2.x[batch]))[:, 0] - torch.as_tensor(m2.y[batch])) ** 2)
    m.batches = lambda epoch, rng: [np.concatenate(p) for p in zip(*[iter(m2.batches(epoch, rng))] * 2)]
    m.build = lambda: torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    m2.build = m.build
    big, _ = Trainer(cfg(max_epochs=1)).fit(m)
    acc, _ = Trainer(cfg(max_epochs=1, grad_accum=2)).fit(m2)
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(params(big), params(acc)))
    assert a is not None


def test_global_generators_are_untouched():
    from genrec.torch_utils import bf16_matmul_speedup

    torch.manual_seed(11)
    np.random.seed(11)
    t, n = torch.get_rng_state(), np.random.get_state()[1].copy()
    bf16_matmul_speedup(n=64, reps=1)
    Trainer(cfg(max_epochs=1)).fit(Regression())
    assert torch.equal(torch.get_rng_state(), t) and np.array_equal(np.random.get_state()[1], n)


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="grad_accum"):
        TrainerConfig(grad_accum=0).check()
    with pytest.raises(ValueError, match="max_epochs or max_steps"):
        TrainerConfig(max_epochs=None).check()
    with pytest.raises(ValueError, match="valid_metric 'ndcg@10'"):
        Trainer(cfg(max_epochs=1, valid_metric="ndcg@10")).fit(Regression())


def test_a_checkpoint_of_a_shorter_schedule_is_refused(tmp_path):
    """More epochs = another learning-rate schedule: resuming would jump the rate, so it is refused."""
    Trainer(cfg(max_epochs=1, checkpoint_dir=str(tmp_path))).fit(Regression())
    with pytest.raises(CheckpointMismatch, match=r"lr_schedule_steps: checkpoint 12, now 24"):
        Trainer(cfg(max_epochs=2, checkpoint_dir=str(tmp_path))).fit(Regression())
