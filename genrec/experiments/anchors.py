"""Published numbers to read our results against, each with its source.

They come from other preprocessing and other code, so they are anchors, not targets. Keys name a
paper table or a protocol; a run config lists the keys it wants on its page (``anchors = [...]``).
Metric names follow :mod:`genrec.eval.metrics` (HR@K with one target is ``recall@K``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

GPT4REC = ("Li, Zhang, Wang, Xiong, Lu, Medioni: GPT4Rec: A Generative Framework for Personalized "
           "Recommendation and User Interests Interpretation, arXiv:2304.03879 (2023)")
GENREC = ("Cao, Lio: GenRec: Generative Sequential Recommendation with Large Language Models, "
          "arXiv:2407.21191 (2024)")
LATER_SASREC = ("full-ranking SASRec on Amazon Beauty as reported by later papers; the paper was not "
                "recorded when the number was copied here (verify before citing it elsewhere)")


@dataclass(frozen=True)
class Anchor:
    """One published row: ``metrics`` as printed in ``source`` (``where``: table and setting)."""

    label: str
    metrics: dict[str, float]
    source: str
    where: str = ""
    notes: list[str] = field(default_factory=list)


ANCHORS: dict[str, list[Anchor]] = {
    # GPT4Rec, Table 1: Amazon Beauty, users split 0.8/0.1/0.1, full ranking.
    "gpt4rec-table1-beauty": [
        Anchor("BERT4Rec (GPT4Rec Table 1)", {"recall@10": 0.0513, "recall@40": 0.1161}, GPT4REC, "Table 1, Beauty"),
        Anchor("YouTubeDNN (GPT4Rec Table 1)", {"recall@40": 0.1066}, GPT4REC, "Table 1, Beauty"),
        Anchor("FM-BPR (GPT4Rec Table 1)", {"recall@40": 0.1040}, GPT4REC, "Table 1, Beauty"),
        Anchor("GPT4Rec, GPT-2 117M, m = K", {"recall@5": 0.0653, "recall@10": 0.1036, "recall@20": 0.1454,
                                               "recall@40": 0.2040}, GPT4REC, "Table 1, Beauty, K = m"),
    ],
    # Leave-one-out Amazon Beauty, full ranking.
    "sasrec-beauty-loo": [
        Anchor("SASRec (BCE), full ranking (published)", {"recall@10": 0.0605, "ndcg@10": 0.0318}, LATER_SASREC,
               "Amazon Beauty, leave-one-out"),
        Anchor("tuned SASRec variants (SASRec+CE, gSASRec)", {"recall@10": 0.093}, LATER_SASREC,
               "Amazon Beauty, leave-one-out", ["approximate (~0.093)"]),
    ],
    # GenRec, Table 2: leave-one-out, full ranking (HR@K = recall@K). Their model: 10 pretraining
    # and 25 fine-tuning epochs.
    **{f"genrec-table2-{ds}": [Anchor("GenRec (paper, Table 2)", m, GENREC, f"Table 2, {ds}")]
       for ds, m in {
           "amazon-sports": {"recall@5": 0.0397, "ndcg@5": 0.0332, "recall@10": 0.0462, "ndcg@10": 0.0353},
           "amazon-beauty": {"recall@5": 0.0515, "ndcg@5": 0.0397, "recall@10": 0.0641, "ndcg@10": 0.0439},
           "yelp": {"recall@5": 0.0627, "ndcg@5": 0.0475, "recall@10": 0.0724, "ndcg@10": 0.0507},
       }.items()},
}


def anchors(*keys: str) -> list[Anchor]:
    """The anchors of ``keys`` in order; an unknown key is a ``KeyError`` listing the known ones."""
    out: list[Anchor] = []
    for k in keys:
        if k not in ANCHORS:
            raise KeyError(f"unknown anchor {k!r}; known: {', '.join(sorted(ANCHORS))}")
        out += ANCHORS[k]
    return out
