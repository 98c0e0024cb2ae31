"""MovieLens loader: the 100K, 1M and CSV layouts, written by the tests in the published formats."""

import pytest

from genrec.data.loaders.movielens import GENRES_100K, detect_layout, load_movielens
from genrec.data.registry import load_dataset
from genrec.errors import DataError, GenrecError
from tests.conftest import shared_dataset


def _flags(*genres):
    return "|".join("1" if g in genres else "0" for g in GENRES_100K)


def write_100k(folder, *, with_genre_file=True):
    folder.mkdir(exist_ok=True)
    # user 1: items 3 and 1 share a timestamp; 3 comes first in the file and must stay first.
    (folder / "u.data").write_text("1\t2\t5\t300\n1\t3\t4\t100\n1\t1\t3\t100\n2\t1\t2\t50\n2\t2\t5\t60\n", encoding="ascii")
    items = [f"1|Toy Story (1995)|01-Jan-1995||http://imdb/1|{_flags('Animation', 'Comedy')}",
             f"2|Misérables, Les (1995)|01-Jan-1995||http://imdb/2|{_flags('Drama')}",
             f"3|Caf&eacute; Society (1995)|01-Jan-1995|||{_flags('unknown')}"]
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))  # GroupLens ships ISO-8859-1
    if with_genre_file:
        (folder / "u.genre").write_text("".join(f"{g}|{n}\n" for n, g in enumerate(GENRES_100K)) + "\n")
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    return folder


def test_100k_latin1_order_ties_genres_and_users(tmp_path):
    ds = load_movielens(write_100k(tmp_path / "ml-100k"), "ml-100k")
    assert ds.sequences["1"] == ["3", "1", "2"]  # by time; the tie at t=100 in file order, not id order
    assert ds.sequences.times["1"] == [100.0, 100.0, 300.0]
    assert ds.catalog["2"].title == "Misérables, Les (1995)"  # latin-1 decoded, year kept
    assert ds.catalog["3"].title == "Café Society (1995)"  # HTML entity cleaned by the Catalog
    assert ds.catalog["1"].categories == ("Animation", "Comedy")
    assert ds.catalog["1"].extra["imdb_url"] == "http://imdb/1"
    assert ds.info["user_features"]["2"] == {"age": 53, "gender": "F", "occupation": "other", "zip": "94043"}
    assert ds.info["layout"] == "100k" and ds.stats()["interactions"] == 5


def test_100k_without_u_genre_uses_the_documented_names(tmp_path):
    ds = load_movielens(write_100k(tmp_path / "m", with_genre_file=False), "m")
    assert ds.catalog["2"].categories == ("Drama",)


def test_min_rating_threshold(tmp_path):
    ds = load_movielens(write_100k(tmp_path / "m"), "m", min_rating=4)
    assert ds.sequences.items == {"1": ["3", "2"], "2": ["2"]}
    assert ds.info["ratings_dropped"] == 2 and "ratings >= 4" in ds.sequences.log[0]
    with pytest.raises(DataError, match="no ratings >= 9"):
        load_movielens(tmp_path / "m", "m", min_rating=9)


def test_1m_layout(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::20::5::978300760\n1::10::3::978300760\n2::10::4::978302109\n")
    (tmp_path / "movies.dat").write_bytes("10::Pokémon: The Movie (1999)::Animation|Children's\n"
                                          "20::Heat (1995)::Action|Crime|Thriller\n".encode("latin-1"))
    (tmp_path / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    ds = load_movielens(tmp_path, "ml-1m")
    assert ds.info["layout"] == "1m"
    assert ds.sequences["1"] == ["20", "10"]  # tie: file order
    assert ds.catalog["10"].title == "Pokémon: The Movie (1999)"
    assert ds.catalog["20"].categories == ("Action", "Crime", "Thriller")
    assert ds.info["user_features"]["1"] == {"gender": "F", "age": "Under 18", "occupation": "K-12 student",
                                             "zip": "48067"}


def test_csv_layout_with_quoting_and_missing_movie(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,4.5,20\n1,1,3.0,10\n1,99,1.0,30\n")
    (tmp_path / "movies.csv").write_text('movieId,title,genres\n1,"American President, The (1995)",Comedy|Drama|Romance\n'
                                         '2,"Sticky ""Quoted"" Title (2001)",(no genres listed)\n', encoding="utf-8")
    with pytest.warns(UserWarning, match="1 item ids occur in the interactions but not in movies.csv"):
        ds = load_movielens(tmp_path, "ml-latest-small")
    assert ds.sequences["1"] == ["1", "2", "99"]
    assert ds.catalog["1"].title == "American President, The (1995)"
    assert ds.catalog["1"].categories == ("Comedy", "Drama", "Romance")
    assert ds.catalog["2"].title == 'Sticky "Quoted" Title (2001)' and ds.catalog["2"].categories == ()


@pytest.mark.parametrize("u_data, message", [
    ("1\t2\t5\t300\n1\t3\t4\n", r"u.data, line 2: expected 4"),
    ("1\t2\t5\t300\n1\tx\t4\t5\n", r"u.data, line 2, field 'item': not an integer"),
    ("1\t2\t5\t300\n\n1\t3\tgood\t5\n", r"u.data, line 3, field 'rating': not a number"),
])
def test_bad_rating_lines_name_file_and_line(tmp_path, u_data, message):
    write_100k(tmp_path)
    (tmp_path / "u.data").write_text(u_data)
    with pytest.raises(DataError, match=message):
        load_movielens(tmp_path, "m")


def test_bad_item_line_and_csv_columns(tmp_path):
    write_100k(tmp_path / "a")
    (tmp_path / "a" / "u.item").write_text("1|Toy Story (1995)|01-Jan-1995\n")
    with pytest.raises(DataError, match=r"u.item, line 1: expected 24 '\|'-separated fields"):
        load_movielens(tmp_path / "a", "m")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "ratings.csv").write_text("user,movie,rating,timestamp\n1,2,3,4\n")
    (tmp_path / "b" / "movies.csv").write_text("movieId,title,genres\n")
    with pytest.raises(DataError, match=r"ratings.csv, line 1: missing column\(s\) userId, movieId; "
                                        r"the file has columns: user, movie, rating, timestamp"):
        load_movielens(tmp_path / "b", "m")


def test_missing_files_are_named_with_where_it_looked(tmp_path):
    (tmp_path / "u.data").write_text("1\t2\t5\t300\n")
    with pytest.raises(DataError, match=rf"missing u.item \(looked in {tmp_path};"):
        load_movielens(tmp_path, "m")
    (tmp_path / "u.data").unlink()
    (tmp_path / "README").write_text("hi")
    with pytest.raises(DataError, match=r"no MovieLens ratings file.*the folder has: README"):
        detect_layout(tmp_path)


def test_registry_error_names_missing_files_and_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("GENREC_CACHE", str(tmp_path / "cache"))
    (tmp_path / "ratings.dat").write_text("1::2::3::4\n")
    with pytest.raises(GenrecError, match=rf"'ml-1m' not found; looked in: {tmp_path}.*{tmp_path} lacks movies.dat"
                                          r".*download https://files.grouplens.org/datasets/movielens/ml-1m.zip"):
        load_dataset("ml-1m", tmp_path)
    (tmp_path / "movies.dat").write_text("2::Heat (1995)::Action\n")
    assert load_dataset("ml-1m", tmp_path).sequences.items == {"1": ["2"]}


@pytest.mark.realdata
def test_real_ml_100k_counts_and_cli():
    from typer.testing import CliRunner

    from genrec.cli import app

    ds = load_movielens(shared_dataset("ml-100k"), "ml-100k")
    st = ds.stats()
    assert (st["users"], st["items"], st["interactions"]) == (943, 1682, 100000)
    assert ds.catalog["1"].title == "Toy Story (1995)"
    res = CliRunner().invoke(app, ["datasets", "stats", "ml-100k", "--preprocess", "standard"])
    assert res.exit_code == 0, res.output
    assert "| raw | 943 | 1,682 | 100,000 |" in res.output


@pytest.mark.parametrize("pyarrow_available", [True, False])
def test_csv_ties_keep_file_order_with_and_without_pyarrow(tmp_path, monkeypatch, pyarrow_available):
    if pyarrow_available:
        pytest.importorskip("pyarrow.csv")
    else:
        import sys

        monkeypatch.setitem(sys.modules, "pyarrow.csv", None)  # as if pyarrow were not installed
    rows = ["10,30,4.0,5", "10,7,2.0,5", "2,30,5.0,9", "10,500,1.0,1", "10,8,3.0,5", "2,7,1.0,9"]
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n")
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n7,A (1990),Drama\n8,B (1991),Drama\n30,C (1992),Drama\n"
                                         "500,D (1993),Drama\n")
    ds = load_movielens(tmp_path, "m")
    assert ds.sequences.items == {"2": ["30", "7"], "10": ["500", "30", "7", "8"]}
    assert ds.sequences.times["10"] == [1.0, 5.0, 5.0, 5.0]
    assert load_movielens(tmp_path, "m", min_rating=3).sequences.items == {"2": ["30"], "10": ["30", "8"]}
