"""The search's typo rules (workers/catalog/typos.py), facets (workers/catalog/facets.py) and
the one-currency rule of price filters and orders (contracts/catalog.py), without a database."""

from __future__ import annotations

import random
import string
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts.catalog import FACETS_EXACT_UP_TO, SearchProducts, SuggestProducts
from contracts.errors import field_errors
from workers.catalog.facets import Counted, band_bounds, band_edges_minor, facets, rounded_estimate
from workers.catalog.typos import (
    PlainQuery,
    Word,
    corrections,
    deletion_variants,
    lexicon_variants,
    osa_distance,
    read_query,
    tsquery_text,
    typo_budget,
)

# --- the budget ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "budget"),
    [
        ("cat", 0),
        ("lmap", 1),  # 4 letters: one typo (Typesense, Algolia; Meilisearch waits for 5)
        ("lamp", 1),
        ("lantren", 1),  # 7
        ("headphnes", 2),  # 9
        ("keyboard", 2),  # 8: two typos from here
        ("x200", 0),  # digits: exact
        ("12345678", 0),
        ("sku-123", 0),
        ("a" * 34, 2),
        ("a" * 35, 0),  # longer than any lexicon word and two typos
    ],
)
def test_budget_by_length(word: str, budget: int) -> None:
    assert typo_budget(word) == budget


# --- the distance -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("lantren", "lantern", 1),  # a swap of two adjacent letters is one typo
        ("lmap", "lamp", 1),
        ("headphnes", "headphones", 1),
        ("xylofrenic", "xylophrenic", 2),
        ("lamp", "lamp", 0),
        ("kitten", "sitting", 3),
        ("ab", "ba", 1),
        ("ca", "abc", 3),  # optimal string alignment, not unrestricted Damerau (which says 2)
        ("cuohc", "couch", 2),  # two swaps
        ("", "abc", 3),
    ],
)
def test_osa_distance(a: str, b: str, distance: int) -> None:
    assert osa_distance(a, b, 5) == distance
    assert osa_distance(b, a, 5) == distance


def test_distance_stops_at_the_limit() -> None:
    assert osa_distance("kitten", "sitting", 1) == 2
    assert osa_distance("a", "abcdef", 2) == 3


def _reference_osa(a: str, b: str) -> int:
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = int(a[i - 1] != b[j - 1])
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


@settings(max_examples=300)
@given(a=st.text("abcd", max_size=8), b=st.text("abcd", max_size=8), limit=st.integers(0, 3))
def test_distance_agrees_with_the_textbook_table(a: str, b: str, limit: int) -> None:
    assert osa_distance(a, b, limit) == min(_reference_osa(a, b), limit + 1)


# --- finding candidates by shared deletions -------------------------------------------------


def test_deletion_variants() -> None:
    assert deletion_variants("lamp", 0) == {"lamp"}
    assert deletion_variants("lamp", 1) == {"lamp", "amp", "lmp", "lap", "lam"}
    assert len(deletion_variants("headphones", 2)) > 40
    # What the lexicon stores: none below 4 letters, one deletion from 4, two from 8.
    assert lexicon_variants("cat") == {"cat"}
    assert lexicon_variants("lamp") == deletion_variants("lamp", 1)
    assert lexicon_variants("keyboard") == deletion_variants("keyboard", 2)


def _edited(word: str, edits: int, rng: random.Random) -> str:
    for _ in range(edits):
        i = rng.randrange(len(word) + 1)
        kind = rng.choice("isdt")
        letter = rng.choice("abcdefg")
        if kind == "i" or not word:
            word = word[:i] + letter + word[i:]
        elif kind == "s" and i < len(word):
            word = word[:i] + letter + word[i + 1 :]
        elif kind == "d" and i < len(word):
            word = word[:i] + word[i + 1 :]
        elif kind == "t" and i + 1 < len(word):
            word = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word


@settings(max_examples=500)
@given(seed=st.integers(0, 2**32), length=st.integers(3, 14), edits=st.integers(0, 3))
def test_every_word_within_the_budget_shares_a_deletion(seed: int, length: int, edits: int) -> None:
    """The lexicon lookup misses nothing: a known word within the typed word's budget
    always shares a deletion variant with it (what the GIN lookup relies on)."""
    rng = random.Random(seed)
    known = "".join(rng.choice("abcdefg") for _ in range(length))
    typed = _edited(known, edits, rng)
    word = Word(typed)
    if word.budget and osa_distance(typed, known, word.budget) <= word.budget:
        assert word.variants() & lexicon_variants(known), (typed, known)
        assert known in corrections(word, {known: 1}) or typed == known


# --- which words are corrected --------------------------------------------------------------

_KNOWN = {"lamp": 40, "lantern": 12, "map": 3, "cat": 9, "couch": 4, "camping": 7, "headphones": 30}


def test_corrections_of_the_issue_s_examples() -> None:
    assert corrections(Word("lantren"), _KNOWN) == ("lantern",)
    assert corrections(Word("lmap"), _KNOWN) == ("lamp", "map")  # one typo each; the more common first
    assert corrections(Word("headphnes"), _KNOWN) == ("headphones",)


def test_words_that_must_not_match() -> None:
    assert corrections(Word("cst"), _KNOWN) == ()  # three letters, one typo: none forgiven
    assert corrections(Word("cta"), _KNOWN) == ()
    assert corrections(Word("cuohc"), _KNOWN) == ()  # five letters, two typos: one forgiven
    assert corrections(Word("lnmap"), _KNOWN) == ()  # five letters, two typos (an extra n, a swap)
    assert corrections(Word("cmapnig"), _KNOWN) == ()  # seven letters, two typos
    # A number one digit off is another number: words with digits are never corrected.
    plain = read_query("x201")
    assert plain is not None and plain.words == () and plain.exact == ("x201",)


def test_a_known_word_is_taken_as_meant() -> None:
    assert corrections(Word("map"), _KNOWN) == ()
    assert corrections(Word("lamp"), {**_KNOWN, "damp": 1}) == ()


# --- reading a query ------------------------------------------------------------------------


def test_plain_words_with_the_last_as_a_prefix() -> None:
    assert read_query("Wireless hea") == PlainQuery((Word("wireless"), Word("hea", prefix=True)))
    assert read_query("desk l") == PlainQuery((Word("desk"), Word("l")))  # one letter: no prefix
    assert read_query("usb-c cable 3.5mm") == PlainQuery((Word("usb"), Word("c"), Word("cable")), ("3.5mm",))
    assert read_query("lamp 200") == PlainQuery((Word("lamp"),), ("200",))  # the last chunk is a number
    assert read_query("!!!") == PlainQuery(())


def test_operators_mean_exactly_what_they_say() -> None:
    for q in ('"desk lamp"', "kettle -red", "lamp or lantern"):
        assert read_query(q) is None
    assert read_query('"desk lam', operators=False) == PlainQuery((Word("desk"), Word("lam", prefix=True)))


def test_tsquery_text() -> None:
    plain = read_query("lantren o'neill x200 hea")
    assert plain is not None
    assert tsquery_text(plain) == "'lantren' & 'o' & 'neill' & ('hea' | 'hea':*) & 'x200'"
    assert (
        tsquery_text(plain, {"lantren": ("lantern",)}, weight="A")
        == "('lantren':A | 'lantern':A) & 'o':A & 'neill':A & ('hea':A | 'hea':*A) & 'x200':A"
    )
    quoted = read_query("a'1 b\\2")
    assert quoted is not None and tsquery_text(quoted) == "'a''1' & 'b\\\\2'"


# --- facets ---------------------------------------------------------------------------------


def test_price_bands_in_each_currency_s_own_units() -> None:
    assert band_bounds("USD", 0) == ("0.00", "10.00")
    assert band_bounds("USD", 3) == ("50.00", "100.00")
    assert band_bounds("USD", 7) == ("1000.00", None)
    assert band_bounds("JPY", 1) == ("1000", "2500")
    assert band_bounds("SEK", 1) == ("100.00", "250.00")
    assert band_bounds("KWD", 1) == ("3.000", "7.500")
    # What the query compares: the same edges in minor units.
    assert band_edges_minor("USD") == (1000, 2500, 5000, 10000, 25000, 50000, 100000)
    assert band_edges_minor("JPY") == (1000, 2500, 5000, 10000, 25000, 50000, 100000)
    assert band_edges_minor("KWD") == (3000, 7500, 15000, 30000, 75000, 150000, 300000)


def test_facets_are_exact_up_to_the_bound() -> None:
    counted = Counted(3, {"home": 3, "lamps": 2, "chairs": 1}, {("USD", 1): 2, ("EUR", 0): 1})
    result = facets(counted, None)
    assert (result.total, result.exact) == (3, True)
    assert [(c.category, c.count) for c in result.categories] == [("home", 3), ("lamps", 2), ("chairs", 1)]
    assert [(b.currency, b.min, b.max, b.count) for b in result.price_bands] == [
        ("EUR", "0.00", "10.00", 1),
        ("USD", "10.00", "25.00", 2),
    ]


def test_counts_of_every_match_are_exact_whatever_their_number() -> None:
    counted = Counted(FACETS_EXACT_UP_TO + 500, {"home": FACETS_EXACT_UP_TO + 500}, {})
    result = facets(counted, None, complete=True)
    assert (result.total, result.exact, result.categories[0].count) == (FACETS_EXACT_UP_TO + 500, True, 1500)


def test_above_the_bound_the_total_is_an_estimate_and_the_counts_are_scaled() -> None:
    sample = FACETS_EXACT_UP_TO + 1
    counted = Counted(sample, {"home": sample, "lamps": 101}, {("USD", 2): sample})
    result = facets(counted, 10_000)
    assert (result.total, result.exact) == (10_000, False)
    assert {c.category: c.count for c in result.categories} == {"home": 10_000, "lamps": 1009}
    # An estimate below what was counted is not believed.
    assert facets(counted, 20).total == sample


@pytest.mark.parametrize(("rows", "shown"), [(0, 0), (87, 87), (1234, 1200), (98_765, 99_000), (3449.6, 3400)])
def test_estimates_are_rounded_to_two_figures(rows: float, shown: int) -> None:
    assert rounded_estimate(rows) == shown


# --- prices never compared across currencies ------------------------------------------------


@pytest.mark.parametrize(
    "params", [{"min_price": "10"}, {"max_price": "10"}, {"sort": "price_asc"}, {"sort": "price_desc", "q": "lamp"}]
)
def test_a_price_filter_or_order_needs_a_currency(params: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as raised:
        SearchProducts.model_validate(params)
    assert [e.field for e in field_errors(raised.value)] == ["currency"]
    SearchProducts.model_validate({**params, "currency": "EUR"})


def test_suggest_limits() -> None:
    assert SuggestProducts.model_validate({"q": "lam"}).limit == 8
    for bad in ({"q": ""}, {"q": "  "}, {"q": "x" * 101}, {"q": "lamp", "limit": 11}, {}):
        with pytest.raises(ValidationError):
            SuggestProducts.model_validate(bad)


def test_random_words_never_break_the_reader() -> None:
    rng = random.Random(17)
    for _ in range(200):
        q = "".join(rng.choice(string.printable + "éü日本") for _ in range(rng.randrange(30)))
        plain = read_query(q, operators=False)
        assert plain is not None
        assert all(w.text.isalpha() for w in plain.words)
        assert Decimal(len(tsquery_text(plain))) >= 0
