"""The report covers the whole paper: 8 figures and 7 tables, each rebuilt by a named library function."""
import importlib

from ebmflow.report import PAPER_ITEMS


def test_every_paper_item_names_an_existing_function():
    assert len([i for i in PAPER_ITEMS if i.item.startswith("Figure")]) == 8
    assert len([i for i in PAPER_ITEMS if i.item.startswith("Table")]) == 7
    for item in PAPER_ITEMS:
        module, function = item.rebuilt_by.split(".")
        assert callable(getattr(importlib.import_module(f"ebmflow.experiments.{module}"), function)), item.item
