"""download_dataset against a real HTTP server on 127.0.0.1 serving zips the tests build."""

import functools
import hashlib
import http.server
import json
import socket
import threading
import zipfile

import pytest

from genrec.data import registry
from genrec.data.download import download_dataset
from genrec.data.registry import DatasetSpec, load_dataset
from genrec.errors import GenrecError

U_DATA = "1\t2\t5\t300\n1\t1\t4\t100\n"
U_ITEM = "1|Toy Story (1995)|01-Jan-1995||x|" + "|".join("0" * 19) + "\n2|Heat (1995)|||y|" + "|".join("0" * 19) + "\n"


class _Handler(http.server.SimpleHTTPRequestHandler):
    hits: list = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        type(self).hits.append(self.path)
        super().do_GET()

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = type("H", (_Handler,), {"hits": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", handler.hits
    httpd.shutdown()
    httpd.server_close()


def _zip(path, files, top="ml-test/"):
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(top + name, text)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _spec(url, sha=None):
    return DatasetSpec("genrec.data.loaders.movielens:load_movielens", "test", "ml-test", ("u.data", "u.item"),
                       url=url, sha256=sha)


def test_download_verifies_unzips_records_and_caches(server, tmp_path):
    root, base, hits = server
    sha = _zip(root / "ml-test.zip", {"u.data": U_DATA, "u.item": U_ITEM, "README": "terms"})
    cache = tmp_path / "cache"
    out = download_dataset("ml-test", _spec(f"{base}/ml-test.zip", sha), cache)
    assert out == cache / "ml-test"
    assert (out / "u.data").read_text() == U_DATA and (out / "README").is_file()  # top folder of the zip stripped
    rec = json.loads((out / ".genrec-download.json").read_text())
    assert rec["sha256"] == sha and rec["verified"] is True and rec["url"] == f"{base}/ml-test.zip"
    assert [p.name for p in cache.iterdir()] == ["ml-test"]  # no temporary folders left
    assert download_dataset("ml-test", _spec(f"{base}/ml-test.zip", sha), cache) == out
    assert hits == ["/ml-test.zip"]  # the second call used the cache


def test_checksum_mismatch_installs_nothing(server, tmp_path):
    root, base, _ = server
    _zip(root / "ml-test.zip", {"u.data": U_DATA, "u.item": U_ITEM})
    cache = tmp_path / "cache"
    with pytest.raises(GenrecError, match=r"checksum mismatch for http://127.0.0.1:\d+/ml-test.zip: expected SHA-256 0+"):
        download_dataset("ml-test", _spec(f"{base}/ml-test.zip", "0" * 64), cache)
    assert list(cache.iterdir()) == []


def test_without_checksum_warns_and_records_the_digest(server, tmp_path):
    root, base, _ = server
    sha = _zip(root / "z.zip", {"u.data": U_DATA, "u.item": U_ITEM}, top="")
    url = f"{base}/z.zip"
    with pytest.warns(UserWarning, match=f"no known checksum for {url}.*not verified.*SHA-256 is {sha}") as w:
        out = download_dataset("ml-test", _spec(url), tmp_path / "c")
    assert len(w) == 1 and str(out / ".genrec-download.json") in str(w[0].message)
    rec = json.loads((out / ".genrec-download.json").read_text())
    assert rec["sha256"] == sha and rec["verified"] is False and "not verified" in rec["note"]


def test_known_checksum_downloads_without_warning(server, tmp_path):
    import warnings

    root, base, _ = server
    sha = _zip(root / "z.zip", {"u.data": U_DATA, "u.item": U_ITEM}, top="")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = download_dataset("ml-test", _spec(f"{base}/z.zip", sha), tmp_path / "c")
    assert "note" not in json.loads((out / ".genrec-download.json").read_text())


def test_network_failure_says_what_to_fetch_and_where(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/ml-100k.zip"
    cache = tmp_path / "cache"
    with pytest.raises(GenrecError) as e:
        download_dataset("ml-test", _spec(url), cache, timeout=5)
    msg = str(e.value)
    assert f"could not download {url}" in msg and f"download {url} and unzip it" in msg
    assert str(cache / "ml-test") in msg and "--data-dir" in msg and "u.data, u.item" in msg
    assert list(cache.iterdir()) == []


def test_http_error_bad_zip_missing_files_and_unsafe_paths(server, tmp_path):
    root, base, _ = server
    cache = tmp_path / "cache"
    with pytest.raises(GenrecError, match=r"HTTP 404.*--data-dir"):
        download_dataset("ml-test", _spec(f"{base}/absent.zip"), cache)
    (root / "junk.zip").write_bytes(b"not a zip at all")
    with pytest.raises(GenrecError, match="not a valid zip"):
        download_dataset("ml-test", _spec(f"{base}/junk.zip"), cache)
    _zip(root / "other.zip", {"ratings.csv": "x"})
    with pytest.raises(GenrecError, match=r"does not contain u.data, u.item"):
        download_dataset("ml-test", _spec(f"{base}/other.zip"), cache)
    _zip(root / "evil.zip", {"u.data": U_DATA}, top="../../")
    with pytest.raises(GenrecError, match="unsafe path"):
        download_dataset("ml-test", _spec(f"{base}/evil.zip"), cache)
    assert list(cache.iterdir()) == [] and not (tmp_path / "u.data").exists()


def test_registry_download_flag(server, tmp_path, monkeypatch):
    root, base, _ = server
    sha = _zip(root / "ml-test.zip", {"u.data": U_DATA, "u.item": U_ITEM})
    monkeypatch.setenv("GENREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(registry.DATASETS, "ml-test", _spec(f"{base}/ml-test.zip", sha))
    with pytest.raises(GenrecError, match=r"'ml-test' not found.*download http://127.0.0.1:\d+/ml-test.zip"):
        load_dataset("ml-test")
    ds = load_dataset("ml-test", download=True)
    assert ds.sequences["1"] == ["1", "2"] and ds.catalog["2"].title == "Heat (1995)"
    assert registry.find_dataset_dir("ml-test") == tmp_path / "cache" / "datasets" / "ml-test"
