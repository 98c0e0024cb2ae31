"""Generic loader: CSV/TSV/Parquet interactions and CSV/JSONL/Parquet item tables written by the tests."""

import json

import pytest

from genrec.data.loaders.generic import load_interactions, load_items_table
from genrec.data.registry import load_dataset
from genrec.data.splits import make_split
from genrec.errors import DataError

INTERACTIONS = "user,item,timestamp\nu1,b,2\nu1,c,1\nu1,a,2\nu2,a,5\nu2,c,7\nu2,b,6\n"


def test_csv_orders_by_time_ties_in_file_order(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text(INTERACTIONS)
    ds = load_interactions(p)
    assert ds.sequences["u1"] == ["c", "b", "a"]  # b and a tie at t=2: file order, not id order
    assert ds.sequences.times["u1"] == [1.0, 2.0, 2.0]
    assert ds.sequences["u2"] == ["a", "b", "c"]
    assert ds.name == "log" and sorted(ds.catalog.ids) == ["a", "b", "c"]
    sp = make_split(ds, "temporal")  # timestamps are kept, so the temporal split works
    assert sp.protocol == "temporal"


def test_tsv_custom_columns_iso_dates_and_no_time(tmp_path):
    p = tmp_path / "log.tsv"
    p.write_text("who\twhat\twhen\nx\t1\t2024-01-02T00:00:00Z\nx\t2\t2024-01-01\n")
    ds = load_interactions(p, user_col="who", item_col="what", time_col="when")
    assert ds.sequences["x"] == ["2", "1"]
    assert ds.sequences.times["x"][0] == 1704067200.0
    nt = load_interactions(p, user_col="who", item_col="what", time_col=None)
    assert nt.sequences["x"] == ["1", "2"] and nt.sequences.times is None
    q = tmp_path / "plain.csv"
    q.write_text("user,item\nx,2\nx,1\n")  # the default 'timestamp' is optional: file order
    assert load_interactions(q).sequences["x"] == ["2", "1"]


def test_unknown_columns_list_the_file_columns(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("uid,iid,ts\n1,2,3\n")
    with pytest.raises(DataError, match=r"log.csv, field 'user': no user column 'user'; the file has columns: uid, iid, ts"):
        load_interactions(p)
    with pytest.raises(DataError, match=r"no time column 'time'; the file has columns: uid, iid, ts"):
        load_interactions(p, user_col="uid", item_col="iid", time_col="time")


@pytest.mark.parametrize("body, message", [
    ("user,item,timestamp\nu,a,1\nu,b\n", r"line 3: 2 fields, but the header has 3"),
    ("user,item,timestamp\nu,a,1\nu,,2\n", r"line 3, field 'item': empty value"),
    ("user,item,timestamp\nu,a,1\nu,b,yesterday\n", r"line 3, field 'timestamp': time 'yesterday' is neither"),
    ("user,item,timestamp\n", r"no interactions"),
    ("", r"line 1: empty file"),
])
def test_bad_rows_name_file_and_line(tmp_path, body, message):
    p = tmp_path / "log.csv"
    p.write_text(body)
    with pytest.raises(DataError, match=r"log.csv.*" + message):
        load_interactions(p)


def test_invalid_utf8_names_the_line(tmp_path):
    p = tmp_path / "log.csv"
    p.write_bytes(b"user,item\nu,a\nu,caf\xe9\n")
    with pytest.raises(DataError, match=r"log.csv, line 3: not UTF-8"):
        load_interactions(p)


def test_items_tables_csv_and_jsonl(tmp_path):
    (tmp_path / "log.csv").write_text(INTERACTIONS)
    (tmp_path / "items.csv").write_text('item_id,title,brand,categories,color\na,"Soap &amp; Co, 2 pack",Acme,Bath|Soap,red\n'
                                        "b,Towel,,Bath,\n")
    with pytest.warns(UserWarning, match="1 item ids occur in the interactions but not in items.csv"):
        ds = load_interactions(tmp_path / "log.csv", tmp_path / "items.csv")
    a = ds.catalog["a"]
    assert (a.title, a.brand, a.categories, a.extra) == ("Soap & Co, 2 pack", "Acme", ("Bath", "Soap"), {"color": "red"})
    assert ds.catalog["b"].brand is None and ds.catalog["c"].title == ""
    (tmp_path / "items.jsonl").write_text(json.dumps({"id": "a", "title": "A", "categories": ["X", "Y"]}) + "\n")
    assert load_items_table(tmp_path / "items.jsonl")[0].categories == ("X", "Y")


def test_items_table_errors(tmp_path):
    (tmp_path / "dup.csv").write_text("item_id,title\na,A\nb,B\na,again\n")
    with pytest.raises(DataError, match=r"dup.csv, line 4, field 'item_id': duplicate item id 'a' \(first on line 2\)"):
        load_items_table(tmp_path / "dup.csv")
    (tmp_path / "noid.csv").write_text("sku,title\na,A\n")
    with pytest.raises(DataError, match=r"noid.csv: no item id column.*the file has columns: sku, title"):
        load_items_table(tmp_path / "noid.csv")
    (tmp_path / "bad.jsonl").write_text('{"id": "a"}\n{"id": \n')
    with pytest.raises(DataError, match=r"bad.jsonl, line 2: bad JSON"):
        load_items_table(tmp_path / "bad.jsonl")


def test_parquet_interactions_and_items(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"user": [1, 1, 2], "item": [10, 11, 10], "timestamp": [5, 4, 1]}),
                   tmp_path / "interactions.parquet")
    pq.write_table(pa.table({"item_id": [10, 11], "title": ["Ten", "Eleven"], "categories": [["A", "B"], []]}),
                   tmp_path / "items.parquet")
    ds = load_dataset("generic", tmp_path)
    assert ds.name == "generic" and ds.sequences["1"] == ["11", "10"]
    assert ds.catalog["10"].title == "Ten" and ds.catalog["10"].categories == ("A", "B")
    from datetime import datetime, timezone

    when = [datetime(2024, 1, 2, tzinfo=timezone.utc), datetime(2024, 1, 1, tzinfo=timezone.utc)]
    pq.write_table(pa.table({"user": ["x", "x"], "item": ["late", "early"], "timestamp": when}), tmp_path / "dt.parquet")
    dt = load_interactions(tmp_path / "dt.parquet")
    assert dt.sequences["x"] == ["early", "late"] and dt.sequences.times["x"] == [1704067200.0, 1704153600.0]
    pq.write_table(pa.table({"u": [1], "i": [2]}), tmp_path / "other.parquet")
    with pytest.raises(DataError, match=r"other.parquet, field 'user'.*the file has columns: u, i"):
        load_interactions(tmp_path / "other.parquet")


def test_generic_folder_through_the_registry(tmp_path):
    (tmp_path / "interactions.csv").write_text(INTERACTIONS)
    (tmp_path / "items.jsonl").write_text("".join(json.dumps({"item_id": i, "title": i.upper()}) + "\n" for i in "abc"))
    ds = load_dataset("generic", tmp_path, preprocess="standard")
    assert ds.catalog["a"].title == "A" and ds.sequences["u1"] == ["c", "b", "a"]
