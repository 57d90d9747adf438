"""jieba, loaded once per process.

The scanner (word edges of a match, common words among generated spellings) and the quality
classifiers and detectors (their words) segment with one tokenizer of jieba's default
dictionary: loading that dictionary takes most of a second and tens of megabytes, and neither
adds a word to it. It is a tokenizer of our own, not jieba's shared default one, so that a
word added there (by a user's ``jieba.add_word``) changes neither what a match's edges are
nor what a trained model sees.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def tokenizer() -> Any:
    """The process's jieba tokenizer, its dictionary loaded on first use."""
    import jieba

    jieba.setLogLevel(60)  # "Building prefix dict..." is noise in a CLI
    segmenter = jieba.Tokenizer()
    segmenter.initialize()
    return segmenter
