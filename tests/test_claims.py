"""The paper's claims, checked on the numbers the committed chapters glued (the cpu profile; a copy of a chapter,
chapter 01 at the paper profile, on its own numbers).

One test per claim of ``ebmflow.report``: it fails when a verdict differs from the recorded one, so a
regression (or an unnoticed improvement) shows up. Claims recorded as not holding are expected failures
whose reason quotes the numbers.
"""
import pytest

from ebmflow.book.claims import render
from ebmflow.book.report import all_claims, load_glued_by_seed


@pytest.fixture(scope="module")
def glued():
    return load_glued_by_seed()  # {chapter: [its glued values]}: a copy's keys repeat its source's


def _param(item, claim):
    marks = [pytest.mark.xfail(strict=True, reason=claim.why_not)] if not claim.expected_to_hold else []
    return pytest.param(item.chapter, claim, id=f"{item.item}: {claim.statement}", marks=marks)


@pytest.mark.parametrize("chapter, claim", [_param(item, claim) for item, claim in all_claims()])
def test_claim_holds_on_committed_chapters(chapter, claim, glued):
    assert chapter in glued, f"{chapter} has no executed notebook in book/"
    [values] = glued[chapter]
    assert claim.check(values), f"{claim.statement}: ours {render(claim.ours, values)}, rule {claim.rule}"
