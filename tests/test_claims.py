"""The paper's claims, judged on every seed of the committed cpu-profile results records.

Each claim of ``ebmflow.book.report`` records its expected outcome over the committed seeds (``Claim.expected``:
"all" = holds in every seed, "some" = in some seeds only, "none"). A test per claim reads the evidence the report
reads (``report.load_evidence("cpu")``: the records under ``results/cpu/`` of one library version with the
profile's own parameters; a chapter without records falls back to its committed, executed notebook, one seed)
and fails when the outcome differs from the recorded one, naming every seed's numbers and the rule, so that a
regression, or an unnoticed improvement, shows up. Nothing is re-run: this judges what is committed.
"""
import string

import pytest

from ebmflow.book.claims import OUTCOMES, outcome
from ebmflow.book.report import _render_over_seeds, all_claims, check_seeds, claim_id, load_evidence

PROFILE = "cpu"  # the committed profile: the one `make book` runs


@pytest.fixture(scope="module")
def evidence():
    return load_evidence(PROFILE)


def _param(item, claim):
    return pytest.param(item, claim, id=f"{claim_id(item, claim)}: {claim.statement}")


def _keys(template):
    return [key for _, key, _, _ in string.Formatter().parse(template) if key]


def _per_seed(claim, ev):
    """Every seed's numbers of the claim, as one line each."""
    lines = []
    for seed, glued in zip(ev.seeds, ev.glued):
        try:
            ours = claim.ours.format_map(glued)
        except (KeyError, ValueError, TypeError):
            ours = ", ".join(f"{key} = {glued.get(key, 'missing')}" for key in _keys(claim.ours))
        lines.append(f"  seed {seed}: {ours}")
    return "\n".join(lines)


@pytest.mark.parametrize("item, claim", [_param(item, claim) for item, claim in all_claims()])
def test_claim_outcome_over_the_committed_seeds_is_the_recorded_one(item, claim, evidence):
    ev = evidence[item.chapter]
    assert ev.source != "none", (f"{item.chapter}: no results records at profile {PROFILE} and no executed notebook "
                                 f"committed: run `make book` and commit results/{PROFILE}/ and book/")
    held = check_seeds(claim, ev.glued)
    missing = [seed for seed, h in zip(ev.seeds, held) if h is None]
    assert not missing, (f"{item.chapter} seeds {missing} ({ev.seeds_text}) lack a number the claim reads "
                         f"({', '.join(_keys(claim.ours))})")
    observed = outcome(held)
    why = ""
    if claim.why_not:
        try:
            why = f"\nwhy not (recorded): {_render_over_seeds(claim.why_not, ev.glued)}"
        except KeyError as key:
            why = f"\nwhy not: its template reads {key}, which the records do not have"
    assert observed == claim.expected, (
        f"{claim.statement}: holds in {sum(held)} of {len(held)} seeds ({ev.seeds_text}; {ev.source}, commit "
        f"{ev.commit_text}), so its outcome is {observed!r}; recorded: {claim.expected!r}.\nrule: {claim.rule}\n"
        f"{_per_seed(claim, ev)}{why}\nIf the new outcome is right, record it: Claim(..., expected={observed!r}"
        + (", why_not=...)" if observed != "all" and not claim.why_not else ")"))


@pytest.mark.parametrize("item, claim", [_param(item, claim) for item, claim in all_claims()])
def test_claim_records_its_outcome_and_says_why_when_it_does_not_always_hold(item, claim):
    assert claim.expected in OUTCOMES
    assert claim.expected_to_hold == (claim.expected == "all")
    if claim.expected != "all":
        assert claim.why_not, f"{claim.statement}: recorded {claim.expected!r} without a why_not"
    for template in (claim.ours, claim.why_not):  # rendered from glued numbers only: no number typed in
        for key in _keys(template):
            assert key.isidentifier(), (claim.statement, key)


def test_why_not_renders_from_the_committed_seeds(evidence):
    """A recorded reason quotes the committed numbers (mean ± sd over the seeds), never a stale typed value."""
    for item, claim in all_claims():
        ev = evidence[item.chapter]
        if claim.why_not and ev.source != "none":
            text = _render_over_seeds(claim.why_not, ev.glued)
            assert text and "{" not in text, claim.statement


def test_outcome_over_seeds():
    assert outcome([True, True, True]) == "all"
    assert outcome([True, False, True]) == "some"
    assert outcome([False, False]) == "none"
