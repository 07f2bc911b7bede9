"""The paper's claims, checked on the numbers the committed (cpu-profile) chapters glued.

One test per claim of ``ebmflow.report``: it fails when a verdict differs from the recorded one, so a
regression (or an unnoticed improvement) shows up. Claims recorded as not holding are expected failures
whose reason quotes the numbers.
"""
import pytest

from ebmflow.book.report import all_claims, load_glued


@pytest.fixture(scope="module")
def glued():
    return load_glued()


def _param(item, claim):
    marks = [pytest.mark.xfail(strict=True, reason=claim.why_not)] if not claim.expected_to_hold else []
    return pytest.param(claim, id=f"{item.item}: {claim.statement}", marks=marks)


@pytest.mark.parametrize("claim", [_param(item, claim) for item, claim in all_claims()])
def test_claim_holds_on_committed_chapters(claim, glued):
    assert claim.check(glued), f"{claim.statement}: ours {claim.ours(glued)}, rule {claim.rule}"
