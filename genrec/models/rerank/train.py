"""LoRA fine-tuning of the verbalizer re-ranker (LlamaRec), through genrec's one trainer.

- Examples (:func:`training_examples`): ``train_users`` training users drawn with a generator
  seeded by ``seed``; each gives its training sequence minus the last item as the history and
  that last *training* item as the target. Validation and test interactions are never read, so no
  held-out target can become a label (``tests/models/test_rerank_train.py`` checks it).
  Candidates: the retriever's top N for that history (``negatives="retriever"``), the target put
  in a seeded random position in place of the last one when the retriever missed it; or the
  target among N-1 uniformly drawn unseen items (``negatives="random"``, LlamaRec's training
  negatives). The prompt is the verbalizer prompt the model ranks with; the label is the target's
  letter.
- Loss (:class:`VerbalizerLoRAModule`): cross-entropy at the answer position only, over the full
  vocabulary (``label_loss="vocab"``, LlamaRec's LM loss on the label token) or over the N
  candidate letters only (``"letters"``). One forward pass per batch of left-padded prompts with
  the LM head on the last position only (``logits_to_keep=1``).
- Adapters: peft LoRA (:func:`genrec.training.lora.apply_lora`), optionally on the last
  ``lora_layers`` transformer blocks only: the blocks below then carry no gradient, so the
  backward pass stops at the lowest adapted block (the affordable setting on a shared CPU).
- Validation: held-out *validation* cases (a seeded sample of ``split.valid``), the retriever's
  top N re-ranked by the network being trained: ``recall@10``/``ndcg@10`` of the target within the
  re-ranked list (a target the retriever missed is a miss), so the trainer keeps the best state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from genrec.training.module import TrainableModule

if TYPE_CHECKING:  # pragma: no cover
    import torch

NEGATIVES = ("retriever", "random")
LABEL_LOSSES = ("vocab", "letters")


@dataclass(frozen=True)
class Example:
    """One training (or validation) prompt: ``label`` is the target's index among the shown
    candidates (-1: the target is not among them, validation only)."""

    user: str
    target: str
    prompt: str
    label: int
    n: int  # candidates shown


def _candidate_lists(retriever, histories: list[list[str]], n: int) -> list[list[str]]:
    got = retriever.recommend(histories, n, exclude_history=True)
    return [list(items)[:n] for items in got.items]


def training_examples(split, retriever, maker, *, users: int, candidates: int, negatives: str = "retriever",
                      seed: int = 0) -> list[Example]:
    """LlamaRec's training examples from ``split.train`` only (module docstring)."""
    if negatives not in NEGATIVES:
        raise ValueError(f"negatives must be one of {', '.join(NEGATIVES)}; got {negatives!r}")
    titles = dict(zip(split.catalog.ids, split.catalog.titles))
    rng = np.random.default_rng([int(seed), 13])
    pool = sorted(u for u, s in split.train.items.items() if len(s) >= 2 and s[-1] not in s[:-1])
    if not pool:
        raise ValueError("no training user has two or more training interactions: nothing to train the re-ranker on")
    chosen = [pool[i] for i in sorted(rng.choice(len(pool), min(users, len(pool)), replace=False))]
    hists = [list(split.train.items[u][:-1]) for u in chosen]
    targets = [split.train.items[u][-1] for u in chosen]
    ids = list(split.catalog.ids)
    if negatives == "retriever":
        lists = _candidate_lists(retriever, hists, candidates)
    else:
        lists = []
        for h, t in zip(hists, targets):
            seen = set(h) | {t}
            neg: list[str] = []
            while len(neg) < candidates - 1:
                c = ids[int(rng.integers(len(ids)))]
                if c not in seen:
                    neg.append(c)
                    seen.add(c)
            lists.append(neg)
    out = []
    for u, h, t, cands in zip(chosen, hists, targets, lists):
        if negatives == "retriever" and t in cands:
            pos = cands.index(t)  # the retriever found it: its own order, as at inference
        else:
            cands = [c for c in cands if c != t][:candidates - 1]
            pos = int(rng.integers(len(cands) + 1))
            cands.insert(pos, t)
        prompt = maker.render([titles[i] for i in h], [titles[i] for i in cands])
        out.append(Example(u, t, prompt, pos, len(cands)))
    return out


def validation_examples(split, retriever, maker, *, users: int, candidates: int, seed: int = 0) -> list[Example]:
    """A seeded sample of ``split.valid``: the retriever's top N in its order (label -1 when the
    target is not among them)."""
    from genrec.training.validation import sample_valid

    cases = [c for c in sample_valid(split.valid, users, seed) if c.history]
    if not cases:
        return []
    titles = dict(zip(split.catalog.ids, split.catalog.titles))
    lists = _candidate_lists(retriever, [list(c.history) for c in cases], candidates)
    return [Example(c.user, c.target, maker.render([titles[i] for i in c.history if i in titles],
                                                   [titles[i] for i in cands]),
                    cands.index(c.target) if c.target in cands else -1, len(cands))
            for c, cands in zip(cases, lists)]


def _logits_kw(model) -> dict[str, int]:
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(base.forward).parameters else {}


def last_logits(net, batch: Sequence[list[int]], pad_id: int) -> "torch.Tensor":
    """Next-token logits ``[len(batch), vocab]`` after each prompt (left-padded, one forward pass)."""
    import torch

    width = max(len(x) for x in batch)
    x = torch.full((len(batch), width), pad_id, dtype=torch.long)
    m = torch.zeros((len(batch), width), dtype=torch.long)
    for r, ids in enumerate(batch):
        x[r, width - len(ids):] = torch.tensor(ids)
        m[r, width - len(ids):] = 1
    dev = next(net.parameters()).device
    pos = (m.cumsum(-1) - 1).clamp(min=0)
    out = net(input_ids=x.to(dev), attention_mask=m.to(dev), position_ids=pos.to(dev), use_cache=False,
              **_logits_kw(net))
    return out.logits[:, -1].float()


class VerbalizerLoRAModule(TrainableModule):
    """The trainer's recipe for the LoRA verbalizer (module docstring)."""

    def __init__(self, model, tokenizer, letter_ids: Sequence[int], train: Sequence[Example],
                 valid: Sequence[Example], *, r: int = 8, alpha: int = 32, dropout: float = 0.05,
                 layers: int = 0, lr: float = 1e-4, batch_size: int = 4, label_loss: str = "vocab",
                 eval_batch_size: int = 8, bf16: bool = False, fingerprint: dict | None = None) -> None:
        if label_loss not in LABEL_LOSSES:
            raise ValueError(f"label_loss must be one of {', '.join(LABEL_LOSSES)}; got {label_loss!r}")
        self.model, self.tok, self.letters = model, tokenizer, list(letter_ids)
        self.r, self.alpha, self.dropout, self.layers = r, alpha, dropout, layers
        self.lr, self.batch_size, self.label_loss, self.eval_batch_size = lr, batch_size, label_loss, eval_batch_size
        enc = lambda text: list(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
        self.train_ids = [(enc(e.prompt), e.label, e.n) for e in train]
        self.valid_ids = [(enc(e.prompt), e.label, e.n) for e in valid]
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.bf16 = bf16  # validation's autocast (the trainer's covers the training steps only)
        self._fp = fingerprint or {}
        self.net: Any = None
        self.tokens_seen = 0

    def build(self):
        from genrec.training.lora import apply_lora

        if self.net is None:
            n_layers = int(getattr(self.model.config, "num_hidden_layers"))
            if not 0 <= self.layers <= n_layers:
                raise ValueError(f"lora_layers must be between 0 (all) and the model's {n_layers} layers; got {self.layers}")
            which = list(range(n_layers - self.layers, n_layers)) if self.layers else None
            self.net = apply_lora(self.model, r=self.r, alpha=self.alpha, dropout=self.dropout,
                                  layers_to_transform=which)
        return self.net

    def optimizer(self, net):
        import torch

        return torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=self.lr, weight_decay=0.0)

    def batches(self, epoch: int, rng: np.random.Generator) -> list[list[int]]:
        """Shuffled examples, grouped by prompt length within windows of 8 batches (less padding)."""
        order = rng.permutation(len(self.train_ids)).tolist()
        win = 8 * self.batch_size
        out = []
        for s in range(0, len(order), win):
            chunk = sorted(order[s:s + win], key=lambda i: len(self.train_ids[i][0]))
            out += [chunk[j:j + self.batch_size] for j in range(0, len(chunk), self.batch_size)]
        return [out[i] for i in rng.permutation(len(out))]

    def count(self, batch) -> int:
        return sum(len(self.train_ids[i][0]) for i in batch)  # tokens, so samples_per_s is tokens/s

    def _loss_of(self, logits, labels, ns):
        import torch

        if self.label_loss == "vocab":
            target = torch.tensor([self.letters[y] for y in labels], device=logits.device)
            return torch.nn.functional.cross_entropy(logits, target)
        n = max(ns)
        sub = logits[:, self.letters[:n]]
        mask = torch.arange(n, device=logits.device)[None, :] >= torch.tensor(ns, device=logits.device)[:, None]
        return torch.nn.functional.cross_entropy(sub.masked_fill(mask, -1e9), torch.tensor(labels, device=logits.device))

    def loss(self, net, batch, rng):
        rows = [self.train_ids[i] for i in batch]
        self.tokens_seen += sum(len(x) for x, _, _ in rows)
        logits = last_logits(net, [x for x, _, _ in rows], self.pad)
        return self._loss_of(logits, [y for _, y, _ in rows], [n for _, _, n in rows])

    def letter_scores(self, net, rows) -> list[np.ndarray]:
        """The candidates' letter logits per row (no gradient; bf16 autocast where it pays)."""
        import torch

        from genrec.torch_utils import autocast

        out = []
        order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))  # less padding
        got: dict[int, np.ndarray] = {}
        with torch.no_grad(), autocast(next(net.parameters()).device, self.bf16):
            for s in range(0, len(order), self.eval_batch_size):
                part = order[s:s + self.eval_batch_size]
                logits = last_logits(net, [rows[i][0] for i in part], self.pad)
                for r, i in enumerate(part):
                    got[i] = logits[r, self.letters[:rows[i][2]]].detach().cpu().numpy()
        out = [got[i] for i in range(len(rows))]
        return out

    def validate(self, net) -> dict[str, float] | None:
        if not self.valid_ids:
            return None
        ranks = []
        for (_, y, _), sc in zip(self.valid_ids, self.letter_scores(net, self.valid_ids)):
            ranks.append(np.inf if y < 0 else 1 + int((sc > sc[y]).sum()))
        r = np.asarray(ranks, dtype=float)
        hit = r <= 10
        return {"recall@10": float(hit.mean()), "ndcg@10": float((hit / np.log2(r + 1)).sum() / len(r)),
                "mean_rank_found": float(r[np.isfinite(r)].mean()) if np.isfinite(r).any() else 0.0}

    def fingerprint(self) -> dict:
        h = hashlib.sha256()
        for x, y, n in self.train_ids:
            h.update(np.asarray(x + [y, n], dtype=np.int64).tobytes())
        return {**self._fp, "r": self.r, "alpha": self.alpha, "dropout": self.dropout, "layers": self.layers,
                "lr": self.lr, "batch_size": self.batch_size, "label_loss": self.label_loss,
                "examples": h.hexdigest()[:16]}
