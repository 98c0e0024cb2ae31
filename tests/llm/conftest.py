"""A small trained tokenizer shared by the LLM-layer tests (the same recipe as tests/lm)."""

import pytest


@pytest.fixture(scope="session")
def tiny_tok(demo_small):
    from genrec.lm.scratch import train_tokenizer
    from genrec.prompts import gpt4rec_template

    return train_tokenizer(demo_small.catalog.titles + [gpt4rec_template().words()] * 20, vocab_size=1024)


@pytest.fixture(scope="session")
def trained_tiny():
    """(catalog, model, tokenizer, builder): the demo catalog and the tiny GPT-2 of the GPT4Rec
    golden file, trained 40 steps by a plain fp32 loop (gpt4rec_golden.py)."""
    from genrec.data.loaders.demo import make_demo_shop
    from genrec.prompts import gpt4rec_template
    from genrec.prompts.tokens import PromptBuilder

    from . import gpt4rec_golden as G

    catalog = make_demo_shop(n_users=400, items_per_type=12, seed=3).catalog
    model, tok, builder = G.tiny_trained_model(catalog.titles, gpt4rec_template().words(), PromptBuilder)
    return catalog, model, tok, builder
