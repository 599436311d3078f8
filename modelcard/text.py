"""Free text measured one way for training, the schema and monitoring: its length, its words, the new ones.

A word is what scikit-learn's text vectorizers take by default: a run of two or more letters, digits or "_",
in lower case. Monitoring compares the share of a request's words that training never saw, and the length
of its values, with what the card recorded; it never looks at the values themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# The longest text a request may send unless the notebook says otherwise (model_card "max_chars"): a review,
# a ticket or a description, not a document. Ten times a 1,000-character training value would be larger.
MAX_TEXT_CHARS = 10_000
# The card keeps at most this many of training's words (the most frequent): the rare rest hardly moves the share.
VOCABULARY_SIZE = 5_000
# The card's sample values are cut at this many characters.
SAMPLE_CHARS = 200
SAMPLES = 5

_WORD = re.compile(r"(?u)\b\w\w+\b")


def words(text: str) -> list[str]:
    """The words of one value, lower-cased, as scikit-learn's vectorizers split them by default."""
    return _WORD.findall(text.lower())


def unseen_words(values: Iterable[str | None], vocabulary: frozenset[str]) -> tuple[int, int]:
    """(words, words not in `vocabulary`) over `values`; blanks count nothing."""
    total = unseen = 0
    for value in values:
        if value is None:
            continue
        found = words(value)
        total += len(found)
        unseen += sum(word not in vocabulary for word in found)
    return total, unseen
