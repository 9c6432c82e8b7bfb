"""Real labelled public text for Kashf's tests and benchmark: the chatterbot corpus.

The PyPI package ``chatterbot-corpus`` (BSD-3-Clause) ships conversations written by people in
many languages, grouped by category, as YAML files (``categories`` and ``conversations``, each
conversation a list of utterances). One conversation is one text (its utterances joined by a
newline) and its category is its label. The Persian files are an informal, hand-written translation
with the usual mix of spellings, so they exercise the normalisation too.

Note for readers of scores: several conversations of a category share their answers and differ
only in the question, so near-duplicates fall on both sides of any split.
"""

from __future__ import annotations

import random
from collections import defaultdict
from importlib import resources
from typing import Any

import yaml

SKIPPED = {"profile"}  # the bot's own profile: translator credits and names, not a topic


def chatterbot(language: str, min_per_category: int = 20) -> list[tuple[str, str]]:
    """(text, category) of every conversation in the language's files, for the categories with at
    least ``min_per_category`` conversations, in file order (files sorted by name)."""
    folder = resources.files("chatterbot_corpus").joinpath("data", language)
    by_category: dict[str, list[str]] = defaultdict(list)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yml"):
            continue
        doc: dict[str, Any] = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
        category = str((doc.get("categories") or [entry.name[:-4]])[0]).strip().lower()
        if category in SKIPPED:
            continue
        for conversation in doc.get("conversations") or []:
            text = "\n".join(str(u).strip() for u in conversation if u is not None and str(u).strip())
            if text:
                by_category[category].append(text)
    return [
        (text, category)
        for category, texts in by_category.items()
        if len(texts) >= min_per_category
        for text in texts
    ]


def persian_chatterbot(min_per_category: int = 20) -> list[tuple[str, str]]:
    """Persian conversations and their category (13 categories and 726 texts at the default 20)."""
    return chatterbot("persian", min_per_category)


def stratified_split(
    rows: list[tuple[str, str]], test_fraction: float = 0.3, seed: int = 0
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Deterministic split keeping each label's share: round(test_fraction * count) of each label
    (at least one, and at least one left for training) go to the test side; order is kept."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for index, (_, label) in enumerate(rows):
        by_label[label].append(index)
    rng = random.Random(seed)
    test: set[int] = set()
    for label in sorted(by_label):
        indices = by_label[label]
        take = min(max(1, round(test_fraction * len(indices))), len(indices) - 1)
        test.update(rng.sample(indices, take))
    train = [row for index, row in enumerate(rows) if index not in test]
    held_out = [row for index, row in enumerate(rows) if index in test]
    return train, held_out
