"""The shipped labelled set, the classifier on its held-out split, references and priority."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import pytest
from typer.testing import CliRunner

from siteops.rules.priority import finding_priority, message_priority
from siteops.triage.model import CLASSES, DataError, load_examples
from siteops.triage.references import Reference, find_references

#: The held-out accuracy this model honestly reaches is about 0.94 (bench/triage_accuracy.py);
#: the floor leaves a margin for scikit-learn versions, not for a broken pipeline.
ACCURACY_FLOOR = 0.85
NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def clf() -> Any:
    from siteops.triage.model import get_classifier

    return get_classifier()


def test_the_labelled_set_is_large_balanced_and_has_a_fixed_test_split() -> None:
    examples = load_examples()
    assert len(examples) >= 400
    per_class = Counter(e.label for e in examples)
    assert set(per_class) == set(CLASSES) and min(per_class.values()) >= 70, per_class
    test = [e for e in examples if e.split == "test"]
    assert 0.15 <= len(test) / len(examples) <= 0.25
    assert {e.label for e in test} == set(CLASSES)
    assert len({e.text.lower() for e in examples}) == len(examples), "duplicate texts leak into the test split"


def test_a_malformed_labelled_file_names_the_line_and_field(tmp_path: Any) -> None:
    bad = tmp_path / "m.jsonl"
    bad.write_text('{"id": "a", "text": "x", "label": "return", "split": "train"}\n'
                   '{"id": "b", "text": "y", "label": "refund", "split": "train"}\n')
    with pytest.raises(DataError, match=r"m.jsonl:2: field 'label': 'refund'"):
        load_examples(bad)


def test_held_out_accuracy_is_above_the_floor_and_beats_the_majority_class(clf: Any) -> None:
    from sklearn.metrics import f1_score

    examples = load_examples()
    test = [e for e in examples if e.split == "test"]
    predicted = [clf.predict(e.text).label for e in test]
    truth = [e.label for e in test]
    accuracy = sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(test)
    majority = Counter(e.label for e in examples if e.split == "train").most_common(1)[0][0]
    baseline = sum(t == majority for t in truth) / len(test)
    assert accuracy >= ACCURACY_FLOOR, accuracy
    assert f1_score(truth, predicted, average="macro") >= ACCURACY_FLOOR - 0.02
    assert accuracy > baseline + 0.5


def test_a_prediction_says_which_words_drove_it(clf: Any) -> None:
    p = clf.predict("Short delivery\nwe ordered 50 clamps and only 40 arrived, 10 missing")
    assert p.label == "shortage" and p.confidence > 0.6
    assert p.evidence and all(any(w in "short delivery we ordered 50 clamps and only 40 arrived, 10 missing"
                                  for w in word.split()) for word in p.evidence), p.evidence
    assert abs(sum(p.probabilities.values()) - 1) < 0.01


def test_an_ambiguous_message_needs_review_and_a_clear_one_does_not() -> None:
    from siteops.services.triage import analyse

    vague = analyse("Problem", "not what we expected", odoo=None, now=NOW)
    clear = analyse("URGENT stock out", "we are out of 22mm elbows, need 200 by tomorrow or the job stops",
                    odoo=None, now=NOW)
    assert vague.needs_review and vague.confidence < 0.6
    assert not clear.needs_review and clear.label == "urgent_replenishment"
    assert vague.site == "CW", "nothing linked: the policy's default site"


def test_references_follow_the_odoo_sequences_and_the_carrier_codes() -> None:
    text = "Re S00042 / north/out/00012, PO P00007, tracking 9400000000000000000003; again S00042. S0004 no."
    assert find_references(text) == [Reference("sale", "S00042"), Reference("picking", "NORTH/OUT/00012"),
                                     Reference("purchase", "P00007"), Reference("tracking", "9400000000000000000003")]


def test_priority_puts_customer_and_financial_impact_first() -> None:
    urgent_gold = message_priority("urgent_replenishment", "need it today", tier="gold", order_value=4000,
                                   promised=NOW - dt.timedelta(hours=2), now=NOW)
    plain_return = message_priority("return", "wrong size", tier="standard", order_value=100, now=NOW)
    other = message_priority("other", "invoice copy please", now=NOW)
    assert urgent_gold.value > plain_return.value > other.value
    assert any("gold" in r for r in urgent_gold.reasons) and any("passed" in r for r in urgent_gold.reasons)
    old_severe = finding_priority(3, NOW - dt.timedelta(days=5), now=NOW)
    new_low = finding_priority(1, NOW - dt.timedelta(hours=1), value=50, now=NOW)
    assert old_severe.value > new_low.value


def test_classify_from_the_command_line_stores_nothing(tmp_path: Any) -> None:
    from siteops.cli import app

    eml = tmp_path / "m.eml"
    eml.write_bytes(b"From: Jane <jane@example.com>\r\nSubject: =?utf-8?q?Missing_items?=\r\n"
                    b"Message-ID: <x1@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                    b"Two cartons missing from delivery CW/OUT/00031, we ordered 8 and got 6.\r\n")
    result = CliRunner().invoke(app, ["triage", "classify", "--file", str(eml), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["class"] == "shortage" and data["needs_review"] is False
    assert [r["ref"] for r in data["references"]] == ["CW/OUT/00031"]
    assert {"confidence", "evidence", "priority"} <= set(data)
    plain = CliRunner().invoke(app, ["triage", "classify"], input="Where is my order\ntracking stuck for 5 days\n")
    assert plain.exit_code == 0 and "delivery_issue" in plain.output
    missing = CliRunner().invoke(app, ["triage", "classify", "--file", str(tmp_path / "nope.eml")])
    assert missing.exit_code == 2 and "nope.eml" in missing.output
