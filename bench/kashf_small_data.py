"""Kashf on small text datasets (at most 50 reports per tag), next to a word n-gram baseline.

Datasets, each with three tags; every training text is reported positive for its own tag and
negative for the other two (14 texts per tag: 42 reports per tag), as a user's first reports are:

- ``topics``: tests/small_datasets.py's three English topics, 12 held-out sentences;
- ``reviews``: its Persian reviews for the Kashf document's two ``tag_texts`` tags, and the
  document's two sample texts held out (two tags, 28 reports per tag);
- ``fa-1`` … and ``en-1`` …: three chatterbot-corpus categories drawn at random (seeded) per
  dataset, 14 conversations each for training and up to 10 others each held out.

A held-out text is right when the tags given at probability >= 0.5 are exactly its own tag. Compared
in the same run, on the same reports and held-out texts:

- Kashf: ``learner.train_tags`` on Kashf's features (the learner chosen by cross-validation);
- Kashf's two learners each forced (LightGBM, linear), to show what the choice is worth;
- the baseline: word uni- and bigram TF-IDF (scikit-learn's default tokenizer) and one
  ``LogisticRegression`` per tag (balanced class weights), tagging at 0.5.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from functions.common.text_features import TextFeaturizer
from functions.train.learner import LEARNERS, LIGHTGBM, LINEAR, train_tags
from tests.datasets_public import chatterbot
from tests.small_datasets import REVIEWS, TOPICS, SmallDataset, reports, training_texts

PER_TAG, HELD_OUT_PER_TAG, TAGS_PER_DATASET = 14, 10, 3
THRESHOLD = 0.5
SYSTEMS = ("kashf", "lightgbm", "linear", "baseline")
CODES = {"persian": "fa", "english": "en"}


@dataclass
class Outcome:
    right: dict[str, int]  # system -> held-out texts tagged exactly right
    held_out: int
    chosen: str | None


def drawn(language: str, draws: int, seed: int = 0) -> list[tuple[str, SmallDataset]]:
    """``draws`` datasets of three chatterbot categories of ``language`` (at least 20
    conversations each: 14 to train on, the rest, up to 10, held out)."""
    by_category: dict[str, list[str]] = {}
    for text, category in chatterbot(language, PER_TAG + 6):
        by_category.setdefault(category, []).append(text)
    rng = random.Random(f"{language}:{seed}")
    datasets = []
    for n in range(draws):
        categories = rng.sample(sorted(by_category), TAGS_PER_DATASET)
        train, held_out = {}, []
        for category in categories:
            texts = rng.sample(by_category[category], len(by_category[category]))
            train[category] = texts[:PER_TAG]
            held_out += [(text, category) for text in texts[PER_TAG : PER_TAG + HELD_OUT_PER_TAG]]
        datasets.append((f"{CODES[language]}-{n + 1}", SmallDataset(train=train, held_out=held_out)))
    return datasets


def _right(tags: list[str], probabilities: dict[str, np.ndarray], held_out: list[tuple[str, str]]) -> int:
    return sum(
        {tag for tag in tags if probabilities[tag][row] >= THRESHOLD} == {truth}
        for row, (_, truth) in enumerate(held_out)
    )


def _baseline(dataset: SmallDataset) -> dict[str, np.ndarray]:
    texts = [text for text, _ in training_texts(dataset)]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    X = vectorizer.fit_transform(texts)
    X_test = vectorizer.transform([text for text, _ in dataset.held_out])
    probabilities = {}
    for tag, labels in reports(dataset).items():
        y = np.array([labels[row] for row in range(len(texts))])
        model = LogisticRegression(class_weight="balanced", solver="liblinear").fit(X, y)
        probabilities[tag] = model.predict_proba(X_test)[:, 1]
    return probabilities


def evaluate(dataset: SmallDataset) -> Outcome:
    texts = [text for text, _ in training_texts(dataset)]
    featurizer = TextFeaturizer.fit(texts)
    X, X_test = featurizer.transform(texts), featurizer.transform([text for text, _ in dataset.held_out])
    tags = list(dataset.train)
    labels = {n: found for n, found in enumerate(reports(dataset).values())}
    right, chosen = {}, None
    for system, learners in (("kashf", LEARNERS), ("lightgbm", (LIGHTGBM,)), ("linear", (LINEAR,))):
        trained = train_tags(X, list(range(len(texts))), labels, learners=learners)
        chosen = trained.learner if system == "kashf" else chosen
        probabilities = {tag: trained.runs[n].model.predict(X_test) for n, tag in enumerate(tags)}
        right[system] = _right(tags, probabilities, dataset.held_out)
    right["baseline"] = _right(tags, _baseline(dataset), dataset.held_out)
    return Outcome(right, len(dataset.held_out), chosen)


def report(draws: int = 5) -> None:
    datasets = [("topics", TOPICS), ("reviews", REVIEWS), *drawn("persian", draws), *drawn("english", draws)]
    print(f"\nsmall datasets: 2-{TAGS_PER_DATASET} tags, {PER_TAG} texts per tag, <= 50 reports per tag;")
    print("held-out accuracy (texts tagged with exactly their tag at p >= 0.5):")
    print(
        f"  {'dataset':<9} {'held out':>8}  {'Kashf':>6} {'LightGBM':>8} {'linear':>6} {'word LR':>7}  chosen"
    )
    totals = dict.fromkeys(SYSTEMS, 0)
    held_out = 0
    for name, dataset in datasets:
        outcome = evaluate(dataset)
        held_out += outcome.held_out
        for system in SYSTEMS:
            totals[system] += outcome.right[system]
        cells = " ".join(f"{outcome.right[s]:>{w}}" for s, w in zip(SYSTEMS, (6, 8, 6, 7), strict=True))
        print(f"  {name:<9} {outcome.held_out:>8}  {cells}  {outcome.chosen}")
    shares = {system: totals[system] / held_out for system in SYSTEMS}
    cells = " ".join(f"{shares[s]:>{w}.3f}" for s, w in zip(SYSTEMS, (6, 8, 6, 7), strict=True))
    print(f"  {'all':<9} {held_out:>8}  {cells}")
    print(f"  ratio Kashf / word LR accuracy : {shares['kashf'] / max(shares['baseline'], 1e-9):.2f}x")
