"""Triage classifier on the held-out split: accuracy, macro-F1 and calibration (ECE, Brier),
against the anchor of a majority-class baseline measured on the same split in the same run.

    .venv/bin/python bench/triage_accuracy.py

Not a test: the numbers are reported (README / notes/triage.md); the test suite asserts
only a floor on accuracy (tests/triage/test_classifier.py).
"""

from __future__ import annotations

import itertools
import time
from collections import Counter

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from siteops.triage.model import CLASSES, load_examples, train


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: |accuracy - confidence| per confidence bin, weighted by size."""
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        mask = (confidence > lo) & (confidence <= hi)
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def brier(probs: np.ndarray, truth: list[str], classes: list[str]) -> float:
    onehot = np.array([[1.0 if t == c else 0.0 for c in classes] for t in truth])
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def main() -> None:
    examples = load_examples()
    train_set = [e for e in examples if e.split == "train"]
    test = [e for e in examples if e.split == "test"]
    started = time.perf_counter()
    clf = train(train_set)
    trained_in = time.perf_counter() - started
    truth = [e.label for e in test]
    started = time.perf_counter()
    predictions = [clf.predict(e.text) for e in test]
    per_message_ms = (time.perf_counter() - started) / len(test) * 1000
    classes = list(CLASSES)
    probs = np.array([[p.probabilities[c] for c in classes] for p in predictions])
    predicted = [p.label for p in predictions]
    confidence = np.array([p.confidence for p in predictions])
    correct = np.array([p == t for p, t in zip(predicted, truth, strict=True)], dtype=float)

    majority = Counter(e.label for e in train_set).most_common(1)[0][0]
    base_pred = [majority] * len(test)
    prior = Counter(e.label for e in train_set)
    base_probs = np.array([[prior[c] / len(train_set) for c in classes]] * len(test))
    base_conf = np.full(len(test), max(prior.values()) / len(train_set))
    base_correct = np.array([t == majority for t in truth], dtype=float)

    acc, base_acc = accuracy_score(truth, predicted), accuracy_score(truth, base_pred)
    print(f"held-out split: {len(test)} messages ({len(train_set)} for training), {len(classes)} classes")
    print(f"{'':24}{'model':>10}{'majority':>10}")
    print(f"{'accuracy':24}{acc:10.3f}{base_acc:10.3f}")
    print(f"{'macro-F1':24}{f1_score(truth, predicted, average='macro'):10.3f}"
          f"{f1_score(truth, base_pred, average='macro', zero_division=0):10.3f}")
    print(f"{'ECE (10 bins)':24}{ece(confidence, correct):10.3f}{ece(base_conf, base_correct):10.3f}")
    print(f"{'Brier (multi-class)':24}{brier(probs, truth, classes):10.3f}{brier(base_probs, truth, classes):10.3f}")
    review = confidence < 0.6
    held = correct[review].mean() if review.any() else 0.0
    print(f"below the 0.6 threshold (to review): {review.sum()} of {len(test)}; accuracy of the rest "
          f"{correct[~review].mean():.3f}, of those held for review {held:.3f}")
    print(f"ratio accuracy / majority baseline: {acc / base_acc:.2f}x")
    print(f"trained in {trained_in:.1f} s; {per_message_ms:.1f} ms per message")


if __name__ == "__main__":
    main()
