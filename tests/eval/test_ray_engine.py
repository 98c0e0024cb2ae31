"""Ray Data batch inference on one local Ray instance (module-scoped: Ray starts once, ~5-10 s).

Checked against the single-process path: evaluation metrics and per-case ranks bit-identical
(a torch model and a per-K-list model), batch recommendations with no user missing or
duplicated, an actor killed mid-run restarted and its chunk retried (same result), and an
actor killed with no restarts left failing the run with a clear error.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ray")
pytest.importorskip("torch")

from genrec.eval.batch_recommend import read_users_file, recommend_users, write_rows  # noqa: E402
from genrec.eval.evaluate import evaluate  # noqa: E402
from genrec.models.registry import create  # noqa: E402


@pytest.fixture(scope="module")
def engine():
    from genrec.eval.ray_engine import RayEngine

    eng = RayEngine(workers=2, threads=1)
    eng.start()
    yield eng
    RayEngine.shutdown()


@pytest.fixture(scope="module")
def models(demo_user, tmp_path_factory):
    out = {}
    for name, params in (("sasrec", {"epochs": 2, "min_steps": 0, "hidden": 16, "layers": 1, "valid_users": 20,
                                     "progress": False, "threads": 1, "bf16": False}),
                         ("title-bm25", {})):
        m = create(name, **params).fit(demo_user)
        folder = tmp_path_factory.mktemp(name)
        m.save(folder)
        out[name] = (m, folder)
    return out


def test_ray_evaluation_is_bit_identical_to_one_process(engine, models, demo_user):
    # (title-bm25's per-K lists are checked the same way by the killed-actor test below)
    m, folder = models["sasrec"]
    local = evaluate(m, demo_user, batch_size=16, progress=False)
    engine.model_dir = folder
    remote = evaluate(m, demo_user, batch_size=16, progress=False, engine=engine)
    assert len(local.per_case) > 16 * 2  # several chunks, spread over both actors
    assert remote.table == local.table  # exact float equality
    assert remote.per_case == local.per_case
    assert remote.lists == local.lists
    assert remote.run_card["engine"].startswith("ray (2 workers")


def _users_file(tmp_path, split):
    lines = [f"{c.user}\t{','.join(c.history)}" for c in split.test]
    lines.insert(3, "# a comment")
    lines.append(json.dumps({"user": "json-user", "history": list(split.test[0].history)}))
    p = tmp_path / "users.txt"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_batch_recommend_on_ray_misses_and_duplicates_no_user(engine, models, demo_user, tmp_path):
    import pyarrow.parquet as pq

    m, folder = models["sasrec"]
    users = read_users_file(_users_file(tmp_path, demo_user))
    assert len(users) == len(demo_user.test) + 1 > 8 * 3 and users[-1][0] == "json-user"
    engine.model_dir = folder
    remote = recommend_users(m, users, 5, engine=engine, batch_size=8)
    local = recommend_users(m, users, 5, batch_size=8)
    assert [r["user"] for r in remote] == [u for u, _ in users]  # every user once, in order
    assert remote == local
    out = write_rows(remote, tmp_path / "recs.parquet")
    table = pq.read_table(out).to_pylist()
    assert [r["user"] for r in table] == [u for u, _ in users] and table[0]["items"] == local[0]["items"]


def test_a_killed_actor_is_restarted_and_its_chunk_retried(engine, models, demo_user, tmp_path):
    """Also the bit-identity check of a per-K-list model (recommend_for_ks through the actors)."""
    m, folder = models["title-bm25"]
    engine.model_dir = folder
    engine.fault_marker = str(tmp_path / "died")
    try:
        remote = evaluate(m, demo_user, batch_size=16, progress=False, engine=engine)
    finally:
        engine.fault_marker = None
    assert (tmp_path / "died").exists()  # an actor did exit mid-run
    local = evaluate(m, demo_user, batch_size=16, progress=False)
    assert remote.table == local.table and remote.per_case == local.per_case and remote.lists == local.lists


def test_a_killed_actor_without_restarts_fails_the_run_clearly(engine, models, demo_user, tmp_path):
    from genrec.eval.ray_engine import RayEngine, RayEngineError

    m, folder = models["title-bm25"]
    strict = RayEngine(workers=1, threads=1, max_restarts=0, max_task_retries=0, model_dir=folder,
                       fault_marker=str(tmp_path / "died"))
    with pytest.raises(RayEngineError, match="Ray batch inference failed"):
        evaluate(m, demo_user, batch_size=64, progress=False, engine=strict)


def test_users_file_errors_name_the_line(tmp_path):
    from genrec.eval.batch_recommend import UsersFileError

    p = tmp_path / "u.txt"
    p.write_text("u1\ti1,i2\nu2 i3\n")
    with pytest.raises(UsersFileError, match=r"u\.txt:2: expected USER<TAB>"):
        read_users_file(p)
    p.write_text("u1\ti1\nu1\ti2\n")
    with pytest.raises(UsersFileError, match=r"u\.txt:2: user 'u1' already given on line 1"):
        read_users_file(p)
    p.write_text('{"user": "u1", "history": "i1"}\n')
    with pytest.raises(UsersFileError, match=r"u\.txt:1: field 'history'"):
        read_users_file(p)
