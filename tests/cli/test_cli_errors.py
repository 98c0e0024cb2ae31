"""Every usage or parameter error: one line naming the parameter and the value, rc 2, no traceback,
and no data loaded first."""

import pytest

from tests.cli.helpers import run

BAD = [
    (["evaluate", "-m", "itemknn", "-p", "itemknn.neighbors=abc"], ["itemknn.neighbors", "'abc'", "integer"]),
    (["evaluate", "-m", "itemknn", "-p", "itemknn.neighbours=3"], ["neighbours", "did you mean 'neighbors'"]),
    (["evaluate", "-m", "pop", "-p", "=5"], ["'=5'", "empty parameter name"]),
    (["evaluate", "-m", "itemknn", "-p", "itemknn.neighbors=0"], ["itemknn.neighbors", ">= 1", "'0'"]),
    (["evaluate", "-m", "sasrec", "-p", "sasrec.dropout=1.5"], ["sasrec.dropout", "'1.5'"]),
    (["evaluate", "-m", "sasrec", "-p", "sasrec.loss=xx"], ["sasrec.loss", "one of ce, sce, bce", "'xx'"]),
    (["evaluate", "-m", "itemknn", "-p", "itemknm.neighbors=1"], ["unknown model 'itemknm'", "did you mean 'itemknn'"]),
    (["evaluate", "-m", "sasrec", "-p", "sasrc.epochs=5"], ["unknown model 'sasrc'", "did you mean 'sasrec'"]),
    (["evaluate", "-m", "pop", "-p", "itemknn.neighbors=5"], ["model 'itemknn' is not selected", "pop"]),
    (["evaluate", "-m", "pop", "-m", "itemknn", "-p", "epochs=3"], ["no selected model (pop, itemknn) takes 'epochs'"]),
    (["evaluate", "-m", "pop", "-p", "threads=abc"], ["threads", "'abc'"]),
    (["evaluate", "-m", "pop", "--ks", "10,abc"], ["--ks", "'abc'"]),
    (["evaluate", "-m", "pop", "--ks", "0"], ["--ks", "0 is not a positive"]),
    (["evaluate", "-m", "pop", "--on", "train"], ["--on", "'train'", "test, valid"]),
    (["evaluate", "-m", "pop", "--max-cases", "0"], ["--max-cases 0"]),
    (["evaluate", "-m", "pop", "--cold-items", "1.5"], ["--cold-items 1.5"]),
    (["evaluate", "-m", "pop", "--split", "random"], ["--split", "'random'", "loo"]),
    (["evaluate", "-m", "pop", "--preprocess", "gpt5"], ["--preprocess", "'gpt5'", "standard"]),
    (["evaluate", "-m", "pop", "--min-rating", "4"], ["--min-rating 4", "'demo' has no ratings"]),
    (["evaluate", "-m", "pop", "--threads", "0"], ["--threads 0"]),
    (["evaluate", "-m", "pop", "--seed", "x"], ["--seed", "'x'"]),
    (["evaluate", "-m", "nope"], ["unknown model 'nope'"]),
    (["recommend", "-m", "pop", "-k", "0"], ["-k 0"]),
    (["recommend", "-m", "pop", "-p", "pop.x=1"], ["model 'pop' has no parameter 'x'"]),
    (["train", "-m", "itemknn", "-o", "/nonexistent/x", "-p", "itemknn.fill_popular=maybe"], ["itemknn.fill_popular", "'maybe'"]),
    (["datasets", "stats", "demo", "--preprocess", "x"], ["--preprocess", "'x'"]),
    (["models", "show", "itemknm"], ["unknown model 'itemknm'"]),
    (["serve", "--model-dir", "/nonexistent", "--chat-backend", "gpt5"], ["--chat-backend", "'gpt5'", "openai:"]),
    (["serve", "--model-dir", "/nonexistent", "--chat-llm-cache", "maybe"], ["--chat-llm-cache", "'maybe'"]),
    (["serve", "--model-dir", "/nonexistent", "--chat-backend", "scratch", "--chat-llm-rank", "27"],
     ["--chat-llm-rank", "27", "from 2 to 26"]),
    (["serve", "--model-dir", "/nonexistent", "--chat-llm-rank", "5"], ["--chat-llm-rank", "needs an LLM", "--chat-backend"]),
    (["serve", "--model-dir", "/nonexistent", "--chat-backend", "scratch", "--chat-llm-rank", "1"], ["--chat-llm-rank", "1 is not 0"]),
]


@pytest.mark.parametrize("args,says", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_usage_error_is_one_line_rc2_before_loading_data(args, says):
    r = run(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for s in says:
        assert s in lines[0], (s, lines[0])
    assert "Traceback" not in r.stderr and "SYNTHETIC" not in r.stderr + r.stdout  # no data was loaded


def test_threads_param_works_for_every_model_and_reaches_models_that_take_it(tmp_path):
    from genrec.cli_support import thread_params
    from genrec.models.registry import MODELS, resolve_params

    for name in MODELS:  # unprefixed threads is the global setting: accepted whatever the model
        given = resolve_params(["threads=1"], [name], global_keys=("threads",))
        assert given[""] == {"threads": 1}
        thread_params([name], 1, given)
    given = resolve_params([], ["als", "sasrec", "pop"])
    thread_params(["als", "sasrec", "pop"], 2, given)
    assert given["als"] == {"num_threads": 2} and given["sasrec"] == {"threads": 2} and given["pop"] == {}
    import json
    import subprocess
    import sys

    # in a child process: --threads limits this whole process's thread pools
    r = subprocess.run([sys.executable, "-m", "genrec.cli", "evaluate", "-m", "pop", "-m", "als", "-p", "threads=1",
                        "-p", "als.iterations=1", "--ks", "10", "--max-cases", "20", "-o", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr

    card = json.loads((tmp_path / "als" / "metrics.json").read_text())["run_card"]
    assert card["params"]["num_threads"] == 1
