"""The report covers the whole paper: 8 figures and 7 tables, each rebuilt by a named library function."""
import importlib

from ebmflow.book.chapters import CHAPTERS, paper_items


def test_every_paper_item_names_an_existing_function():
    items = [i for i in paper_items() if i.item.split()[0] in ("Figure", "Table") and not CHAPTERS[i.chapter].copy_of]
    assert len({i.item for i in items if i.item.startswith("Figure")}) == 8
    assert len({i.item for i in items if i.item.startswith("Table")}) == 7
    for item in paper_items():
        module, function = item.rebuilt_by.split(".")
        assert callable(getattr(importlib.import_module(f"ebmflow.experiments.{module}"), function)), item.item
