"""The CSV writer escapes what a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io

from booking_service.api.reports import csv_lines


def test_cells_starting_like_a_formula_are_escaped() -> None:
    hostile = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tx", "plain", None, 3]
    text = "".join(csv_lines(["a", "b", "c", "d", "e", "f", "g", "h"], [hostile]))
    header, row = list(csv.reader(io.StringIO(text)))
    assert header == ["a", "b", "c", "d", "e", "f", "g", "h"]
    assert row == ['\'=HYPERLINK("http://x")', "'+1", "'-2", "'@SUM(A1)", "'\tx", "plain", "", "3"]
