"""GPT4Rec's query generation before the LLM backend layer, kept as a golden file.

``python tests/llm/gpt4rec_golden.py`` trained the tiny model below and wrote
``data/gpt4rec_queries_golden.json`` (the prompt ids and the queries of every decoding mode) at
commit e9b67de, before GPT4Rec moved onto ``genrec.llm`` and ``genrec.prompts`` (then
``main`` imported ``PromptBuilder``/``PromptTemplate`` from ``genrec.lm.prompts``; rerun now, it
rewrites the same file). ``test_gpt4rec_backend.py`` rebuilds the same
model and checks that the prompts and queries through the backend are identical.

The model is trained here by a plain fp32 loop (not ``genrec.lm.train``, which is moving onto the
new trainer), one thread, so the weights depend only on torch's CPU kernels.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

GOLDEN = Path(__file__).parent / "data" / "gpt4rec_queries_golden.json"
HISTORIES = [(0, 1), (5, 3), (10, 0), (20, 2), (33, 5)]  # (first title, number of titles)
MODES = {"beam": {}, "branch": {}, "greedy": {}, "sample": {"seed": 7}}


def catalog_titles() -> list[str]:
    from genrec.data.loaders.demo import make_demo_shop

    return make_demo_shop(n_users=400, items_per_type=12, seed=3).catalog.titles


def tiny_trained_model(titles: list[str], words: str, builder_cls, steps: int = 40):
    """(model, tokenizer, builder): a scratch tokenizer on the titles, a tiny GPT-2 trained
    ``steps`` steps of AdamW on prompts made of consecutive catalog titles."""
    import torch

    from genrec.lm.scratch import build_model, train_tokenizer

    torch.set_num_threads(1)
    tok = train_tokenizer(titles + [words] * 20, vocab_size=1024)
    model = build_model("tiny", tok, n_positions=128, dropout=0.0, seed=3)
    builder = builder_cls(tok, max_title_tokens=12, max_prompt_tokens=80)
    ids = builder.titles_ids(titles)
    rows = [builder.example(ids[i:i + 3], ids[i + 3])[0] for i in range(0, len(ids) - 4, 2)]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        pick = torch.randint(len(rows), (16,), generator=gen).tolist()
        width = max(len(rows[i]) for i in pick)
        x = torch.full((16, width), tok.pad_token_id)
        labels = torch.full((16, width), -100)
        for r, i in enumerate(pick):
            x[r, :len(rows[i])] = torch.tensor(rows[i])
            labels[r, :len(rows[i])] = torch.tensor(rows[i])
        loss = model(input_ids=x, attention_mask=(labels != -100).long(), labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), tok, builder


def prompts(builder, titles: list[str]) -> list[list[int]]:
    ids = builder.titles_ids(titles)
    return [builder.prompt_ids(ids[i:i + n]) for i, n in HISTORIES]


def main() -> None:
    from genrec.lm.generate import generate_queries
    from genrec.prompts import gpt4rec_template
    from genrec.prompts.tokens import PromptBuilder

    titles = catalog_titles()
    model, tok, builder = tiny_trained_model(titles, gpt4rec_template().words(), PromptBuilder)
    ps = prompts(builder, titles)
    out = {"prompts": ps, "queries": {}}
    for mode, kw in MODES.items():
        out["queries"][mode] = generate_queries(model, tok, ps, 4, mode=mode, max_new_tokens=10, batch_size=2,
                                                device="cpu", bf16=False, **kw)
    GOLDEN.write_text(json.dumps(out) + "\n")
    print(f"wrote {GOLDEN}", file=sys.stderr)


if __name__ == "__main__":
    main()
