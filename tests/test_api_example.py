"""The "use the library in your own code" example of the API page runs as written (so it never rots)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

API_PAGE = Path(__file__).resolve().parent.parent / "book" / "api.md"


def example_code() -> str:
    """The code block named ``api-example`` on the API page."""
    fence = re.compile(r"^```\{code-block\} python\n((?::\w+:[^\n]*\n)*)\n?(.*?)^```$", re.M | re.S)
    blocks = fence.findall(API_PAGE.read_text())
    named = [code for options, code in blocks if re.search(r"^:name: api-example$", options, re.M)]
    assert len(named) == 1, "the API page must have exactly one code block named api-example"
    return named[0]


@pytest.mark.slow
def test_api_page_example_runs(tmp_path):
    code = example_code()
    assert "ebmflow.experiments.common import train" in code
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    match = re.search(r"(\d+) iterations; weight of the 2/3 mode: ([0-9.]+)", result.stdout)
    assert match, result.stdout
    assert int(match[1]) == 5
    assert 0.0 <= float(match[2]) <= 1.0
