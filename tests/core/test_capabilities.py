"""Declared capabilities: a frozen set of flags, read instead of probing with hasattr."""

import pytest

from genrec.core.capabilities import Capabilities, capabilities_of


def test_flags_default_off_copy_with_changes_and_list_names():
    none = Capabilities()
    assert none.names() == [] and not any(none.to_dict().values())
    c = none.with_(text_updates=True, cold_start_items=True)
    assert c.names() == ["cold_start_items", "text_updates"]  # declaration order
    assert none.names() == []  # frozen: the copy did not change the original
    with pytest.raises(Exception):
        c.explains = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        none.with_(no_such_flag=True)
    with pytest.raises(TypeError, match="takes_exclude"):
        Capabilities(takes_exclude="yes")  # type: ignore[arg-type]


def test_capabilities_of_reads_the_class_declaration_and_defaults_to_none():
    from genrec.models.baselines.content import ContentRec
    from genrec.models.baselines.pop import PopRec

    assert capabilities_of(ContentRec()).text_updates and capabilities_of(ContentRec()).cold_start_items
    assert not capabilities_of(PopRec()).text_updates and capabilities_of(PopRec()).takes_exclude

    class DuckTyped:
        capabilities = {"explains": True}  # not a Capabilities: promises nothing

    assert capabilities_of(DuckTyped()) == Capabilities() == capabilities_of(object())


def test_models_show_lists_the_declared_capabilities():
    from typer.testing import CliRunner

    from genrec.cli import app

    content = CliRunner().invoke(app, ["models", "show", "content"])
    assert content.exit_code == 0, content.output
    assert "capabilities: cold_start_items, text_updates, takes_exclude, scores_all_items" in content.output
    pop = CliRunner().invoke(app, ["models", "show", "pop"])
    assert "capabilities: takes_exclude, scores_all_items" in pop.output
