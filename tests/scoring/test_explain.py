"""Plain-language explanations: every verdict, generated from its numbers."""

import pytest

from app.scoring.comparison import compare, summarize_claim
from app.scoring.explain import decimals_for, explain_comparison, fmt, fmt_given, fmt_p, fmt_signed
from tests.scoring.worked import R1, R2, C


def test_number_formatting() -> None:
    assert decimals_for(0.006) == 4
    assert decimals_for(0.5) == 2
    assert decimals_for(2.0) == 1
    assert fmt(-0.00751, 4) == "−0.0075"
    assert fmt(-0.00001, 4) == "0.0000"
    assert fmt_signed(0.17, 2) == "+0.17"
    assert fmt_signed(-0.33, 2) == "−0.33"
    assert fmt_given(0.962, 4) == "0.962"
    assert fmt_given(0.96212345, 4) == "0.9621"
    assert fmt_p(0.000817919) == "p = 0.00082"
    assert fmt_p(1e-7) == "p < 0.0001"


def test_the_example_of_the_brief() -> None:
    # The claim of PACKAGE_FORMAT.md. (The brief's sample sentence, "−0.0075 to −0.0003 lies
    # inside the ±0.006 margin", cannot happen: −0.0075 is outside; 0.9581 ± 0.0031 against these
    # values is inconclusive. A reproduction at 0.9601 is reproduced.)
    claim = summarize_claim(0.962, values=[0.961, 0.958, 0.966, 0.963, 0.962])
    near = [0.9581 + d for d in (-0.004, 0.003, 0.0, -0.002, 0.003)]
    c = compare(claim=claim, reproduced=near, direction="higher", tolerance=0.006)
    assert explain_comparison(c).startswith(
        "5 fresh seeds gave 0.9581 ± 0.0031; the 90% interval of the difference to the claimed "
        "0.962, −0.0074 to −0.0004, is neither inside the ±0.006 margin nor entirely beyond it: "
        "inconclusive, leaning worse"
    )
    good = [v + 0.002 for v in near]
    c = compare(claim=claim, reproduced=good, direction="higher", tolerance=0.006)
    assert explain_comparison(c).startswith(
        "5 fresh seeds gave 0.9601 ± 0.0031; the 90% interval of the difference to the claimed "
        "0.962, −0.0054 to +0.0016, lies inside the ±0.006 margin: reproduced."
    )


def test_reproduced_text_quotes_the_interval() -> None:
    c = compare(
        claim=summarize_claim(97.1, values=C), reproduced=R1, direction="higher", tolerance=0.5
    )
    text = explain_comparison(c)
    assert "−0.33 to +0.17, lies inside the ±0.5 margin: reproduced." in text
    assert "Welch" in text


def test_not_reproduced_text() -> None:
    c = compare(
        claim=summarize_claim(97.1, values=C), reproduced=R2, direction="higher", tolerance=0.5
    )
    text = explain_comparison(c)
    assert "lies entirely below −0.5" in text
    assert "(p = 0.00082): not reproduced." in text


def test_exceeded_text() -> None:
    c = compare(claim=summarize_claim(90.0), reproduced=R1, direction="higher", tolerance=0.5)
    assert "lies entirely above +0.5" in explain_comparison(c)
    assert explain_comparison(c).count("exceeded") == 1


@pytest.mark.parametrize(
    ("values", "lean_words"),
    [
        ([9.0, 9.4, 8.7, 9.2], "leaning worse"),
        ([11.0, 10.6, 11.3, 10.8], "leaning better"),
        ([8.0, 12.0, 9.0, 11.0], "no lean"),
    ],
)
def test_inconclusive_text_with_lean(values: list[float], lean_words: str) -> None:
    c = compare(claim=summarize_claim(10.0), reproduced=values, direction="higher", tolerance=0.9)
    text = explain_comparison(c)
    assert "inconclusive" in text
    assert lean_words in text


def test_lower_is_better_is_said() -> None:
    c = compare(
        claim=summarize_claim(0.3), reproduced=[0.29, 0.3, 0.31], direction="lower", tolerance=0.05
    )
    assert "lower is better" in explain_comparison(c)


def test_insufficient_and_se_zero_texts() -> None:
    one = compare(claim=summarize_claim(1.0), reproduced=[1.0], direction="higher", tolerance=0.1)
    assert "Only 1 fresh seed" in explain_comparison(one, fresh_failed={"timeout": 4})
    assert "4 fresh run(s) failed (timeout 4)" in explain_comparison(
        one, fresh_failed={"timeout": 4}
    )
    none = compare(claim=summarize_claim(1.0), reproduced=[], direction="higher", tolerance=0.1)
    assert "No fresh seed" in explain_comparison(none)
    nan = compare(
        claim=summarize_claim(1.0),
        reproduced=[1.0, float("nan")],
        direction="higher",
        tolerance=0.1,
    )
    assert "not finite" in explain_comparison(nan)
    same = compare(
        claim=summarize_claim(0.962), reproduced=[0.962] * 5, direction="higher", tolerance=0.006
    )
    text = explain_comparison(same)
    assert "all gave exactly 0.9620" in text
    assert "no spread to test" in text
    assert text.endswith("reproduced.")
    low = compare(
        claim=summarize_claim(1.0), reproduced=[0.9, 0.9], direction="higher", tolerance=0.1
    )
    assert "not reproduced" in explain_comparison(low)
