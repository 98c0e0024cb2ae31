"""Fixtures for the service tests: trained models (pop, the query-shaped test model) and a
PostgreSQL server started from Debian's binaries when they are present."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")


@pytest.fixture(scope="session")
def serve_split():
    from genrec.data.registry import load_dataset
    from genrec.data.splits import make_split

    return make_split(load_dataset("demo", preprocess="standard"), "loo")


@pytest.fixture(scope="session")
def pop_dir(serve_split, tmp_path_factory) -> Path:
    from genrec.models.registry import create

    d = tmp_path_factory.mktemp("pop_model")
    create("pop").fit(serve_split).save(d)
    return d


@pytest.fixture(scope="session")
def title_bm25_dir(serve_split, tmp_path_factory) -> Path:
    """A real ``title-bm25`` model (GPT4Rec's BM25 search and rank-based merge, the history's last
    5 titles as the queries) saved to a folder."""
    from genrec.models.title_bm25 import TitleBM25

    d = tmp_path_factory.mktemp("title_bm25_model")
    TitleBM25(num_queries=5, tune_bm25=False).fit(serve_split).save(d)
    return d


@pytest.fixture()
def query_model(serve_split):
    from serve_helpers import QueryRec

    return QueryRec().fit(serve_split)


@pytest.fixture()
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'genrec.db'}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "initdb").exists() and (d / "pg_ctl").exists():
            return d
    return None


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL cluster (initdb + pg_ctl on a free port); skips when unavailable."""
    pytest.importorskip("psycopg", reason="psycopg 3 not installed (pip install 'psycopg[binary]')")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL binaries not found (apt-get install postgresql)")
    as_root = os.geteuid() == 0
    if as_root and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as a non-root user")
    base = Path(tempfile.mkdtemp(prefix="genrec-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if as_root:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        base.chmod(0o755)

    def run(*cmd: str) -> subprocess.CompletedProcess:
        full = (["runuser", "-u", "postgres", "--"] if as_root else []) + list(cmd)
        return subprocess.run(full, capture_output=True, text=True, timeout=120)

    port = _free_port()
    r = run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
    if r.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"initdb failed: {r.stderr.strip()[:300]}")
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
    r = run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(base / "log"), "-w", "-t", "60", "start")
    if r.returncode != 0:
        log = (base / "log").read_text() if (base / "log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {r.stderr.strip()[:200]} {log[-300:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        time.sleep(0.1)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture()
def pg_db(postgres_url):
    """A fresh database in the session's PostgreSQL cluster, for one test."""
    import psycopg

    name = f"t{time.time_ns()}"
    with psycopg.connect(postgres_url.replace("postgresql://", "postgresql://", 1), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    yield postgres_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request, tmp_path) -> str:
    """Each test using it runs on a SQLite file and on PostgreSQL (skipped when unavailable)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'genrec.db'}"
    return request.getfixturevalue("pg_db")
