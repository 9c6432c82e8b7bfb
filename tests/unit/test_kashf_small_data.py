"""Kashf on small text datasets (tests/small_datasets.py): the learner chosen per dataset by
cross-validation, calibrated probabilities, and empty input never tagged.

Measured in these runs (``bench/kashf_small_data.py`` gives the same figures): three topics with 14
training sentences each, 12 held out: LightGBM alone 4 right, the calibrated linear model that
cross-validation chooses over it 12; the document's two ``tag_texts`` samples each get the
document's tag.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from functions.api.kashf_runs import KashfRuns
from functions.api.kashf_service import KashfService, TextLabel
from functions.api.kashf_tag_answers import TextTags, tagging_answer
from functions.common.bootstrap import Deps
from functions.common.datasets import DatasetRepository, DatasetType
from functions.common.tag_model import TagModel
from functions.common.text_features import TextFeaturizer
from functions.train.handler import handle
from functions.train.learner import LIGHTGBM, LINEAR, DatasetRuns, train_tag, train_tags
from tests.fakes import MemoryBus, memory_deps
from tests.small_datasets import (
    DISSATISFIED,
    RECOMMEND,
    REVIEWS,
    TOPICS,
    SmallDataset,
    reports,
    training_texts,
)

TENANT = "acme"
EMPTY = ["", "   ", "...", "؟!"]


def fitted(dataset: SmallDataset) -> tuple[TextFeaturizer, sp.csr_matrix, dict[int, dict[int, bool]]]:
    texts = [text for text, _ in training_texts(dataset)]
    featurizer = TextFeaturizer.fit(texts)
    return featurizer, featurizer.transform(texts), dict(enumerate(reports(dataset).values()))


def tags_of(trained: DatasetRuns, dataset: SmallDataset, X: sp.csr_matrix) -> list[set[str]]:
    """The tags each row of ``X`` gets (probability at or above the threshold)."""
    names = list(dataset.train)
    probabilities = {names[n]: run.model.predict(X) for n, run in trained.runs.items()}
    return [{name for name in names if probabilities[name][row] >= 0.5} for row in range(X.shape[0])]


def test_three_topics_from_14_sentences_each_are_learnt_by_the_learner_cross_validation_picks() -> None:
    featurizer, X, labels = fitted(TOPICS)
    ids = list(range(X.shape[0]))
    chosen = train_tags(X, ids, labels)
    boosted = train_tags(X, ids, labels, learners=(LIGHTGBM,))
    held_out = featurizer.transform([text for text, _ in TOPICS.held_out])
    truth = [{tag} for _, tag in TOPICS.held_out]
    right = sum(got == want for got, want in zip(tags_of(chosen, TOPICS, held_out), truth, strict=True))
    right_boosted = sum(
        got == want for got, want in zip(tags_of(boosted, TOPICS, held_out), truth, strict=True)
    )
    assert chosen.learner == LINEAR and chosen.brier[LINEAR] < chosen.brier[LIGHTGBM]
    assert right >= 11 and right > right_boosted
    tennis = featurizer.transform(["The tennis player lost the match in three sets."])
    assert tags_of(chosen, TOPICS, tennis) == [{"sport"}]


def test_probabilities_are_calibrated_to_the_reports() -> None:
    """Platt scaling on the out-of-fold scores: the mean probability of a tag's reports is its
    positive share (1/3 here), and a confident answer is mostly a right one."""
    _, X, labels = fitted(TOPICS)
    for learner in (LIGHTGBM, LINEAR):
        trained = train_tags(X, list(range(X.shape[0])), labels, learners=(learner,))
        for tag_id, run in trained.runs.items():
            oof = np.array([run.oof[item] for item in sorted(labels[tag_id])])
            truth = np.array([labels[tag_id][item] for item in sorted(labels[tag_id])])
            assert abs(oof.mean() - truth.mean()) < 0.05, (learner, tag_id)
            confident = oof >= 0.9
            assert not confident.any() or truth[confident].mean() >= 0.8, (learner, tag_id)


def test_lightgbm_stays_where_it_wins() -> None:
    """Tags that depend on two features together (one or the other, not both) are beyond a linear
    model: cross-validation keeps LightGBM, which learns them."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 8)).astype(np.float32)
    either = (X[:, 0] > 0) != (X[:, 1] > 0)
    labels = {0: {n: bool(either[n]) for n in range(400)}}
    trained = train_tags(X[:400], list(range(400)), labels)
    linear = train_tags(X[:400], list(range(400)), labels, learners=(LINEAR,))
    assert trained.learner == LIGHTGBM and trained.brier[LIGHTGBM] < trained.brier[LINEAR]
    right = np.mean((trained.runs[0].model.predict(X[400:]) >= 0.5) == either[400:])
    right_linear = np.mean((linear.runs[0].model.predict(X[400:]) >= 0.5) == either[400:])
    assert right >= 0.8 and right_linear < 0.7


@pytest.mark.parametrize("positives", [12, 2])  # a learner, and the centroid fallback
def test_empty_input_is_never_tagged(positives: int) -> None:
    featurizer, X, labels = fitted(TOPICS)
    sport = {item: label for item, label in labels[0].items() if not label or item < positives}
    run = train_tag(0, X, list(range(X.shape[0])), sport)
    assert run.model.kind == ("centroid" if positives < 3 else LINEAR)
    assert run.model.predict(featurizer.transform(EMPTY)).tolist() == [0.0] * len(EMPTY)
    restored = TagModel.from_json(run.model.to_json())
    assert restored.predict(featurizer.transform(EMPTY)).tolist() == [0.0] * len(EMPTY)
    assert restored.predict(sp.csr_matrix((1, X.shape[1]), dtype=np.float32)).tolist() == [0.0]


@pytest.fixture
async def deps(tmp_path: Path) -> AsyncIterator[Deps]:
    async with memory_deps(tmp_path) as deps:
        yield deps


async def test_the_documents_tag_texts_sample_gets_the_documents_tags(deps: Deps) -> None:
    """The document's sample: a digikala dataset taught "توصیه خرید" and "عدم رضایت بعد خرید" (with the
    document's own report and introduction sentences among the reports), its two sample texts each
    get their tag, and nothing else; an empty text gets none."""
    kashf = KashfService(deps)
    await kashf.create_dataset(TENANT, slug="digikala", title="دیجی کالا", kind=DatasetType.TEXT)
    tags = {
        title: (await kashf.create_tag(TENANT, slug="digikala", title=title, active=True)).id
        for title in REVIEWS.train
    }
    labels = [
        TextLabel(tag_id=tag_id, positive=other == title, content=text)
        for text, title in training_texts(REVIEWS)
        for other, tag_id in tags.items()
    ]
    await kashf.report_texts(TENANT, labels)
    runs, bus = KashfRuns(deps), deps.bus
    assert isinstance(bus, MemoryBus)
    await runs.train(TENANT, "digikala")
    await handle(bus.events[-1], deps)

    contents = [text for text, _ in REVIEWS.held_out]
    pending = await runs.tag_texts(TENANT, slug="digikala", contents=[*contents, ""], wait=False)
    await handle(bus.events[-1], deps)
    tagged = await runs.tag_texts(TENANT, slug="digikala", contents=[*contents, ""], wait=False)
    assert tagged.request.id == pending.request.id
    dataset = await DatasetRepository(deps.state).get(TENANT, "digikala")
    answer = tagging_answer(dataset, tagged.request)
    assert all(isinstance(entry, TextTags) for entry in answer)
    found = [
        (entry.content, [tag.title for tag in entry.tags]) for entry in answer if isinstance(entry, TextTags)
    ]
    assert found == [(contents[0], [RECOMMEND]), (contents[1], [DISSATISFIED]), ("", [])]
    assert {tag.model for tag in dataset.tags.values()} == {LINEAR}
