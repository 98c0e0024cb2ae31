"""A small trained tokenizer shared by the LM tests (trained once per session)."""

import pytest


@pytest.fixture(scope="session")
def tiny_tok(demo_small):
    from genrec.lm.prompts import PromptTemplate
    from genrec.lm.scratch import train_tokenizer

    return train_tokenizer(demo_small.catalog.titles + [PromptTemplate().words()] * 20, vocab_size=1024)
