import pytest

from genrec.data.catalog import Catalog, Item
from genrec.errors import DataError
from genrec.text import clean_title


def test_clean_title_entities_tags_control_chars():
    assert clean_title("Salt &amp;amp; Pepper &#39;Grinder&#39;") == "Salt & Pepper 'Grinder'"
    assert clean_title("  <b>Bold</b>\n\tname\u200b  ") == "Bold name"
    assert clean_title(None) == ""
    assert clean_title("Cafe\u0301") == "Café"  # NFC


def test_index_does_not_follow_insertion_order():
    items = [Item(id=f"I{n:04d}", title=f"t{n}") for n in range(200)]
    cat = Catalog(items)
    order = [int(cat.id_at(i)[1:]) for i in range(len(cat))]
    assert order != sorted(order)  # hashed order, not first-seen order
    assert Catalog(reversed(items)).ids == cat.ids  # and independent of the input order


def test_duplicate_and_empty_ids_rejected():
    with pytest.raises(DataError, match="duplicate item id 'a'"):
        Catalog([Item("a"), Item("a")], source="items.jsonl")
    with pytest.raises(DataError, match="non-empty"):
        Catalog([Item("")])


def test_lookup_add_and_round_trip(tmp_path):
    cat = Catalog([Item("a", "Lip &amp; Cheek", "Brand", ("Makeup", "Lips")), Item("b", "B")])
    assert cat["a"].title == "Lip & Cheek"
    with pytest.raises(KeyError, match="unknown item id 'zz'"):
        cat.index_of("zz")
    assert list(cat.indices(["a", "zz"], skip_unknown=True)) == [cat.index_of("a")]
    new = cat.add([Item("c", "New")])
    assert new == [2] and cat.id_at(2) == "c"
    with pytest.raises(DataError):
        cat.add([Item("a")])
    cat.save(tmp_path / "c.jsonl")
    back = Catalog.load(tmp_path / "c.jsonl")
    assert back.ids == cat.ids and back["a"].categories == ("Makeup", "Lips")


def test_load_names_bad_line(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text('{"item_id": "a", "title": "x"}\n{not json\n')
    with pytest.raises(DataError, match=r"c.jsonl, line 2"):
        Catalog.load(p)


def test_replace_keeps_index_and_cleans():
    cat = Catalog([Item("a", "Old"), Item("b", "B")])
    n = cat.index_of("a")
    got = cat.replace(Item("a", "New &amp; better", "Brand"))
    assert cat.index_of("a") == n and got.title == "New & better" and cat["a"].brand == "Brand"
    with pytest.raises(KeyError):
        cat.replace(Item("zz", "x"))
