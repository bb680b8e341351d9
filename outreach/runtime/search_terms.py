"""Which part of a search term should drive the trigram index.

pg_trgm turns `ILIKE '%term%'` into every trigram of the term, and a GIN scan reads the posting list of each
one: a trigram found in most leads ("com" of "company", "lea" of "lead...@") costs a pass over most of the
index and narrows nothing. So the index is asked only for the stretch of the term between its first and last
trigrams that are not common; the full term is then checked on the few rows that stretch finds. The result is the
same either way: the stretch is a substring of the term. Trigrams follow pg_trgm: lower case, words are
runs of letters and digits, a word gets two blanks before and one after unless it touches the pattern's `%`.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Trigram:
    text: str
    start: int  # the term's characters it covers, [start, end)
    end: int
    left_pad: bool  # holds the blank before its word: the stretch must keep the character before the word
    right_pad: bool


def words(term: str) -> list[tuple[int, int]]:
    spans, start = [], None
    for index, char in enumerate(term + " "):
        if char.isalnum() and start is None:
            start = index
        elif not char.isalnum() and start is not None:
            spans.append((start, index))
            start = None
    return spans


def trigrams(term: str) -> list[Trigram]:
    """pg_trgm's trigrams of `%term%`, in order, with the characters each covers."""
    found, lowered = [], term.lower()
    for start, end in words(lowered):
        left, right = (2 if start > 0 else 0), (1 if end < len(lowered) else 0)
        padded = " " * left + lowered[start:end] + " " * right
        for at in range(len(padded) - 2):
            found.append(Trigram(padded[at:at + 3], start + max(0, at - left), start + min(end - start, at + 3 - left),
                                 at < left, at + 3 > left + end - start))
    return found


def index_stretch(term: str, common: frozenset[str]) -> str:
    """The substring of `term` whose trigrams drive the index: the term without the common trigrams at its ends
    (those in the middle stay: cutting there would trade a cheap index read for many rows to check), widened by
    the blank-making character its first or last trigram needs. The whole term when that leaves fewer than two
    trigrams (nothing left to narrow with) or nothing is common."""
    found = trigrams(term)
    kept = [index for index, trigram in enumerate(found) if trigram.text not in common]
    if len(kept) < 2:
        return term
    first, last = found[kept[0]], found[kept[-1]]
    return term[first.start - (1 if first.left_pad else 0):last.end + (1 if last.right_pad else 0)]
