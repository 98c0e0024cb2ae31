"""Amazon loaders: the sequences.txt folders and the raw 2014/2018 review dumps, on files the tests write."""

import gzip
import json
import warnings

import pytest

from genrec.data.loaders.amazon import find_review_files, load_amazon_reviews, load_sequences_folder
from genrec.data.registry import load_dataset
from genrec.errors import DataError
from tests.conftest import shared_dataset


def _write_folder(tmp_path, seq_lines, items=None):
    (tmp_path / "sequences.txt").write_text("".join(l + "\n" for l in seq_lines), encoding="utf-8")
    if items is not None:
        (tmp_path / "items.jsonl").write_text("".join(json.dumps(d) + "\n" for d in items), encoding="utf-8")
    return tmp_path


ITEMS = [
    {"item_id": "B2", "title": "Rose &amp; Oud Perfume &#39;Intense&#39;", "brand": "Acme", "categories": ["Fragrance", "Women"]},
    {"item_id": "A1", "title": "  Shampoo\n 8 oz ", "brand": None, "categories": ["Hair Care", "Shampoo"]},
    {"item_id": "C3", "title": "", "brand": "Zed", "categories": []},
]


def test_sequences_folder_keeps_file_order_and_cleans_titles(tmp_path):
    _write_folder(tmp_path, ["u1 B2 A1 C3", "u2 C3 B2", "u3 A1"], ITEMS)
    ds = load_sequences_folder(tmp_path, "beauty-mini")
    assert ds.name == "beauty-mini"
    assert ds.sequences["u1"] == ["B2", "A1", "C3"]  # file order, not id order
    assert ds.sequences["u3"] == ["A1"]  # a single-item user is kept raw ...
    with pytest.warns(UserWarning, match="dropped 1 users with fewer than 2 items"):
        assert "u3" not in ds.preprocess("standard").sequences  # ... and dropped by preprocessing
    assert ds.sequences.times is None
    assert ds.catalog["B2"].title == "Rose & Oud Perfume 'Intense'"
    assert ds.catalog["A1"].title == "Shampoo 8 oz"
    assert ds.catalog["A1"].brand is None and ds.catalog["B2"].categories == ("Fragrance", "Women")
    assert ds.stats()["interactions"] == 6


def test_without_items_jsonl_ids_only(tmp_path):
    _write_folder(tmp_path, ["u1 x y", "u2 y z"])
    ds = load_sequences_folder(tmp_path, "ids")
    assert sorted(ds.catalog.ids) == ["x", "y", "z"]
    assert all(t == "" for t in ds.catalog.titles)


def test_items_missing_from_items_jsonl_get_id_only_entries_with_counted_warning(tmp_path):
    _write_folder(tmp_path, ["u1 B2 NEW1", "u2 NEW2 A1"], ITEMS)
    with pytest.warns(UserWarning, match=r"2 item ids occur in the interactions but not in items.jsonl"):
        ds = load_sequences_folder(tmp_path, "t")
    assert ds.catalog["NEW1"].title == "" and ds.info["items_missing_metadata"] == 2


def test_user_with_no_items_is_skipped_and_counted(tmp_path):
    _write_folder(tmp_path, ["u1 a b", "lonely", "", "u2 b c", "alone  "])
    with pytest.warns(UserWarning, match="skipped 2 users with no items"):
        ds = load_sequences_folder(tmp_path, "t")
    assert ds.sequences.users == ["u1", "u2"] and ds.info["users_skipped_empty"] == 2


def test_invalid_utf8_names_file_and_line(tmp_path):
    (tmp_path / "sequences.txt").write_bytes(b"u1 a b\nu2 caf\xe9 b\n")
    with pytest.raises(DataError, match=r"sequences.txt.*line 2.*not UTF-8") as e:
        load_sequences_folder(tmp_path, "t")
    assert e.value.line == 2


def test_duplicate_user_names_both_lines(tmp_path):
    _write_folder(tmp_path, ["u1 a b", "u2 b", "u1 c"])
    with pytest.raises(DataError, match=r"sequences.txt, line 3.*duplicate user id 'u1' \(first on line 1\)"):
        load_sequences_folder(tmp_path, "t")


@pytest.mark.parametrize("bad, message", [
    ('{"item_id": "a", "title": "x"', "bad JSON"),
    ('{"title": "no id"}', "missing item_id"),
    ('["a", "b"]', "expected a JSON object"),
    ('{"item_id": "a", "title": "again"}', r"duplicate item_id 'a' \(first on line 1\)"),
    ('{"item_id": "b", "categories": 5}', "categories must be a list"),
])
def test_bad_items_jsonl_names_file_and_line(tmp_path, bad, message):
    _write_folder(tmp_path, ["u1 a"])
    (tmp_path / "items.jsonl").write_text('{"item_id": "a", "title": "A"}\n' + bad + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"items.jsonl, line 2.*{message}") as e:
        load_sequences_folder(tmp_path, "t")
    assert e.value.line == 2


def test_missing_sequences_file_names_it_and_the_folder(tmp_path):
    with pytest.raises(DataError, match=rf"missing sequences.txt \(looked in {tmp_path}\)"):
        load_sequences_folder(tmp_path, "t")


# -- raw review dumps ------------------------------------------------------------------------

def _gz(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")


def _review(user, asin, t):
    return json.dumps({"reviewerID": user, "asin": asin, "unixReviewTime": t, "overall": 5.0, "reviewText": "ok"})


def test_reviews_2014_order_by_time_ties_in_file_order_and_literal_meta(tmp_path):
    _gz(tmp_path / "reviews_Beauty_5.json.gz", [
        _review("U1", "Z9", 300), _review("U1", "A1", 100),
        _review("U1", "M5", 200), _review("U1", "B2", 200),  # tie: M5 before B2 in the file, kept so
        _review("U2", "A1", 50),
    ])
    _gz(tmp_path / "meta_Beauty.json.gz", [
        repr({"asin": "A1", "title": "Nail Polish &amp; Remover", "brand": "OPI",
              "categories": [["Beauty", "Makeup", "Nails"], ["Health", "Other"]]}),
        repr({"asin": "B2", "title": "Mascara", "categories": [["Health", "X"], ["Beauty", "Makeup", "Eyes", "Mascara"]]}),
        repr({"asin": "M5", "title": "Lip Balm", "categories": [["Beauty"]]}),
        repr({"asin": "UNUSED", "title": "never reviewed"}),
    ])
    with pytest.warns(UserWarning, match="1 item ids occur in the interactions but not in meta_Beauty"):
        ds = load_amazon_reviews(tmp_path, "beauty-raw")
    assert ds.sequences["U1"] == ["A1", "M5", "B2", "Z9"]
    assert ds.sequences.times["U1"] == [100.0, 200.0, 200.0, 300.0]
    assert ds.catalog["A1"].title == "Nail Polish & Remover" and ds.catalog["A1"].brand == "OPI"
    assert ds.catalog["A1"].categories == ("Makeup", "Nails")
    assert ds.catalog["B2"].categories == ("Makeup", "Eyes", "Mascara")  # the path under the file's category
    assert ds.catalog["M5"].categories == ()
    assert "UNUSED" not in ds.catalog and ds.catalog["Z9"].title == ""
    assert ds.info["category"] == "Beauty"


def test_reviews_2018_json_meta_category_and_duplicate_meta(tmp_path):
    (tmp_path / "Luxury_Beauty_5.json").write_text("\n".join([
        _review("u", "b", 20), _review("u", "a", 10), _review("v", "a", 10)]) + "\n", encoding="utf-8")
    meta = [{"asin": "a", "title": "Serum", "brand": "Lux", "category": ["Luxury Beauty", "Skin Care", "Serums"]},
            {"asin": "b", "title": "Cream", "brand": "", "category": []},
            {"asin": "a", "title": "Serum duplicate", "category": []}]
    _gz(tmp_path / "meta_Luxury_Beauty.json.gz", [json.dumps(m) for m in meta])
    with pytest.warns(UserWarning, match="1 repeated asin records ignored"):
        ds = load_amazon_reviews(tmp_path, "lux")
    assert ds.sequences["u"] == ["a", "b"]
    assert ds.catalog["a"].title == "Serum" and ds.catalog["a"].categories == ("Skin Care", "Serums")
    assert ds.catalog["b"].brand is None


def test_literal_eval_never_runs_code(tmp_path):
    marker = tmp_path / "pwned"
    _gz(tmp_path / "reviews_Toys_5.json.gz", [_review("u", "a", 1)])
    _gz(tmp_path / "meta_Toys.json.gz", [f"__import__('pathlib').Path({str(marker)!r}).touch()"])
    with pytest.raises(DataError, match=r"meta_Toys.json.gz, line 1.*neither JSON nor a Python literal"):
        load_amazon_reviews(tmp_path, "t")
    assert not marker.exists()


@pytest.mark.parametrize("record, field", [
    ({"reviewerID": "u", "unixReviewTime": 1}, "asin"),
    ({"reviewerID": "u", "asin": "a"}, "unixReviewTime"),
    ({"reviewerID": "u", "asin": "a", "unixReviewTime": "soon"}, "unixReviewTime"),
])
def test_bad_review_names_file_line_and_field(tmp_path, record, field):
    _gz(tmp_path / "reviews_Toys_5.json.gz", [_review("u", "a", 1), json.dumps(record)])
    with pytest.raises(DataError, match=rf"reviews_Toys_5.json.gz, line 2, field '{field}'"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_amazon_reviews(tmp_path, "t")


def test_find_review_files_choices(tmp_path):
    (tmp_path / "items.jsonl").write_text("{}\n")  # neither is a review file
    (tmp_path / ".genrec-download.json").write_text("{}\n")
    with pytest.raises(DataError, match="no Amazon review file"):
        find_review_files(tmp_path)
    _gz(tmp_path / "reviews_Toys_5.json.gz", [_review("u", "a", 1)])
    assert find_review_files(tmp_path) == (tmp_path / "reviews_Toys_5.json.gz", None)
    _gz(tmp_path / "reviews_Toys.json.gz", [_review("u", "a", 1)])
    _gz(tmp_path / "Books_5.json.gz", [_review("u", "a", 1)])
    with pytest.raises(DataError, match=r"several categories \(Books, Toys\)"):
        find_review_files(tmp_path)
    assert find_review_files(tmp_path, "Toys") == (tmp_path / "reviews_Toys_5.json.gz", None)  # 5-core preferred
    with pytest.raises(DataError, match="no reviews file for category 'Games'"):
        find_review_files(tmp_path, "Games")


def test_amazon_reviews_through_the_registry(tmp_path):
    _gz(tmp_path / "reviews_Toys_5.json.gz", [_review("u", "b", 2), _review("u", "a", 1)])
    with pytest.warns(UserWarning, match="ids only"):
        ds = load_dataset("amazon-reviews", tmp_path)
    assert ds.name == "amazon-reviews" and ds.sequences["u"] == ["a", "b"]


@pytest.mark.realdata
def test_real_amazon_beauty_counts():
    ds = load_sequences_folder(shared_dataset("amazon-beauty"), "amazon-beauty")
    st = ds.stats()
    assert (st["users"], st["items"], st["interactions"]) == (22363, 12101, 198502)
    assert sum(1 for it in ds.catalog if not it.title) == 7
    pre = ds.preprocess("gpt4rec")
    assert len(pre.sequences) == 22254  # GPT4Rec Table 2, see the Preprocess docstring
