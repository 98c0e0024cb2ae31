"""A small trained tokenizer shared by the LM tests (trained once per session)."""

import pytest


@pytest.fixture(scope="session")
def tiny_tok(demo_small):
    from genrec.lm.scratch import train_tokenizer
    from genrec.prompts import gpt4rec_template

    return train_tokenizer(demo_small.catalog.titles + [gpt4rec_template().words()] * 20, vocab_size=1024)
