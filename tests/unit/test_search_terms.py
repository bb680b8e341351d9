"""The stretch of a search term that drives the trigram index (runtime/search_terms.py)."""
from __future__ import annotations

from outreach.runtime.search_terms import index_stretch, trigrams

COMMON = frozenset({"com", "omp", "mpa", "pan", "any", "ny ", "lea", "ead", "050", "exa", "xam", "amp", "mpl", "ple"})


def test_trigrams_follow_pg_trgm_padding_for_a_pattern_between_percent_signs():
    assert [t.text for t in trigrams("company 0042")] == ["com", "omp", "mpa", "pan", "any", "ny ", "  0", " 00",
                                                         "004", "042"]
    assert [t.text for t in trigrams("Ivan")] == ["iva", "van"]  # touches both % signs: no blanks
    assert [t.text for t in trigrams("no-such")] == ["no ", "  s", " su", "suc", "uch"]
    assert trigrams("x") == [] and [t.text for t in trigrams("y 0")] == ["  0"]


def test_the_stretch_leaves_common_trigrams_out_and_keeps_the_blanks_it_needs():
    assert index_stretch("company 0042", COMMON) == " 0042"  # the blank keeps "  0" and " 00": a word starts
    assert index_stretch("lead50000@", COMMON) == "ad50000@"  # the @ keeps "00 ": the digits end a word
    assert index_stretch("0501234", COMMON) == "501234"
    assert index_stretch("ivan@example.com", COMMON) == "ivan@example.co"  # the middle stays


def test_the_whole_term_when_nothing_or_everything_is_common():
    assert index_stretch("Petrenko", COMMON) == "Petrenko"
    assert index_stretch("company", COMMON) == "company"
    assert index_stretch("ab", COMMON) == "ab"
    assert index_stretch("company 0042", frozenset()) == "company 0042"


def test_the_stretch_is_always_a_substring_of_the_term():
    for term in ["company 0042", "lead50000@", "a-company-b", "  x company  ", "Ünïcode compañía 7", "%_\\"]:
        assert index_stretch(term, COMMON) in term
