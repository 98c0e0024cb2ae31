"""Slow clients against a real uvicorn server on 127.0.0.1: half-sent requests are cut at the
header/body deadlines, /health keeps answering while they are held, and beyond the connection
limit new requests get a fast 503 instead of waiting."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest


def _serve(app, limits):  # noqa: ANN001, ANN202
    import uvicorn

    from genrec.serve.transport import uvicorn_config

    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", 0, limits, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline and t.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    return server, t, server.servers[0].sockets[0].getsockname()[1]


def _half_sent(port: int, n: int, body: bool) -> list[socket.socket]:
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if body:  # whole headers, 10 of 100 body bytes
            s.sendall(b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{\"history\"")
        else:  # half the headers
            s.sendall(b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-")
        out.append(s)
    return out


def _closed_by_server(s: socket.socket, wait: float) -> bool:
    s.settimeout(wait)
    try:
        return s.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.fixture()
def app(pop_dir, db_url):  # noqa: ANN201
    from genrec.serve.app import create_app

    return create_app(pop_dir, db_url)


def test_half_sent_requests_are_cut_and_health_answers(app):
    from genrec.serve.transport import Limits

    server, thread, port = _serve(app, Limits(header_timeout=1.5, body_timeout=1.5, max_connections=1000))
    try:
        held = _half_sent(port, 150, body=False) + _half_sent(port, 150, body=True)
        t0 = time.perf_counter()
        r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert r.status_code == 200 and time.perf_counter() - t0 < 2.0
        # A client trickling its headers a byte at a time is cut at the deadline too.
        slow = socket.create_connection(("127.0.0.1", port), timeout=5)
        start = time.time()
        cut = False
        for ch in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200:
            try:
                slow.sendall(bytes([ch]))
            except OSError:
                cut = True
                break
            time.sleep(0.05)
            if time.time() - start > 4:
                break
        assert cut or _closed_by_server(slow, 1.0), "a trickling client kept its connection past the deadline"
        assert time.time() - start < 4
        assert all(_closed_by_server(s, 3.0) for s in held), "half-sent requests were not cut"
        # A complete request is unaffected, before and after.
        r = httpx.post(f"http://127.0.0.1:{port}/recommend", json={"history": [], "k": 2}, timeout=5)
        assert r.status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_beyond_the_connection_limit_requests_get_a_fast_503(app):
    from genrec.serve.transport import Limits

    server, thread, port = _serve(app, Limits(header_timeout=2.0, body_timeout=2.0, max_connections=40))
    try:
        held = _half_sent(port, 45, body=False)
        t0 = time.perf_counter()
        r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert r.status_code == 503 and time.perf_counter() - t0 < 2.0
        assert all(_closed_by_server(s, 4.0) for s in held)
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=15)
