"""Text features of the quality classifiers: normalization, jieba words, character n-grams.

The functions here are pickled *by reference* inside the trained pipelines, so their module
path and names are part of the artifact format: renaming one breaks every saved model, and
changing what one does changes what a saved model sees (the training code hashes this file
into the model version for that reason).

Normalization, per message: NFKC (full-width letters, digits and punctuation to their plain
forms), lower case, traditional to simplified (OpenCC ``t2s``), every run of digits to ``0``
(order numbers and prices carry no tone) and runs of whitespace to one space. Punctuation is
kept: ``？？？`` and ``!`` say something about the writer's mood.

Two forms are made equal because they carry no tone of their own but were learned as one:
the polite 您 becomes 你, and the closing particles 哦 呢 哈 啦 呀 and ``~`` at the end of a
clause are dropped. A model fed these hand-written chats otherwise learns "no 您 = rude"
(terse correct advice written by busy staff rarely has it) instead of what the words say;
after this step a message with and without 您, with and without a closing particle, is the
same input, so its scores are equal by construction.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from audit.scan.segment import tokenizer

if TYPE_CHECKING:
    from sklearn.pipeline import FeatureUnion

_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")
# A closing particle: the end of the text or of a clause (punctuation or a space follows).
_PARTICLES = re.compile(r"[哦呢哈啦呀~]+(?=[\s,.!?;:，。！？；：…、)）]|$)")
# The pipeline scores each batch with both models: a cache of this size lets the second model
# reuse the first one's jieba work on a batch of the stage's default size (2000).
_CACHE = 8192


@lru_cache(maxsize=1)
def _t2s() -> Any:
    from opencc import OpenCC

    return OpenCC("t2s")


# The models learned from chat messages; a longer text is judged by its beginning, so a
# megabyte-long message costs what a chat message costs (the scanner still reads all of it).
MAX_CLASSIFIED = 2_000


@lru_cache(maxsize=_CACHE)
def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text[:MAX_CLASSIFIED]).lower()
    text = str(_t2s().convert(text))
    text = _SPACES.sub(" ", _DIGITS.sub("0", text).replace("您", "你")).strip()
    plain = _PARTICLES.sub("", text).strip()
    return plain or text  # 哈哈哈 alone stays what it is


@lru_cache(maxsize=_CACHE)
def _words(text: str) -> tuple[str, ...]:
    return tuple(w for w in tokenizer().cut(text, HMM=False) if not w.isspace())


def tokenize(text: str) -> list[str]:
    """jieba words of an already normalized message (no HMM: faster, and no guessed words)."""
    return list(_words(text))


def build_features(max_words: int, max_chars: int, min_df: int) -> FeatureUnion:
    """TF-IDF of jieba word 1-2 grams and character 1-3 grams, each capped in size."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    common: dict[str, Any] = {
        "preprocessor": normalize,
        "lowercase": False,
        "min_df": min_df,
        "sublinear_tf": True,
        "dtype": _float32(),
    }
    words = TfidfVectorizer(
        tokenizer=tokenize, token_pattern=None, ngram_range=(1, 2), max_features=max_words,
        **common,
    )  # fmt: skip
    chars = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), max_features=max_chars, **common)
    return FeatureUnion([("words", words), ("chars", chars)])


def _float32() -> Any:
    import numpy as np

    return np.float32


def slim(features: FeatureUnion) -> None:
    """Drop what a fitted vectorizer keeps only for inspection (``stop_words_``: every term
    cut by ``max_features``/``min_df``, megabytes of it), so the artifact stays small, and
    ``_stop_words_id``, a memory address scikit-learn caches a check under: it differs from
    process to process and would make two identical trainings give different files."""
    for _, vectorizer in features.transformer_list:
        for name in ("stop_words_", "_stop_words_id"):
            if hasattr(vectorizer, name):
                delattr(vectorizer, name)
