"""Product search, listing and autocomplete: full text with typo tolerance, filters,
facets, keyset pages. The rules are in typos.py and facets.py; this module asks PostgreSQL.

Matching a plain query (words, no operators): each word matches as PostgreSQL's English
configuration reads it (stemmed, in the weighted `search` vector: name A, description
B), or, if the catalog does not know it, as any known word within its typo budget (the
lexicon, `catalog.lexicon`, found by shared deletions through a GIN index and checked by
distance here: typos.py); the last word also as a prefix. Every word must match. Words
with digits match exactly. A query with operators (a phrase, `-word`, `or`) goes to
`websearch_to_tsquery` as written, without corrections.

Relevance: a product named exactly as the query, then products matching the query as
typed (prefix included) above those that match only through a correction, then
`ts_rank` (a name match outweighs a description match); ties break on the product id.

Prices are compared and sorted within one currency only: the contract requires
`currency` with a price filter or order, and the price index leads with it.

A first page carries facets (facets.py). A text search in relevance order ranks every
match, so the same statement counts them all (exact). Otherwise they are counted over at
most FACETS_EXACT_UP_TO + 1 matches; above that the total is the planner's estimate
(EXPLAIN), flagged.

Every order is a keyset: the cursor holds the order's name, the last row's sort key and
its id, and the next page continues strictly after that pair.

Statements go to asyncpg directly (prepared per connection, as db/prepared.py does for
the hot paths): one round trip for the planner settings and the lexicon, one for the page
(with the facets, for a ranked text search), one for the facets otherwise and, past the
bound, one for the estimate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from contracts.catalog import (
    FACETS_EXACT_UP_TO,
    ProductPage,
    ProductView,
    SearchFacets,
    SearchProducts,
    Suggestion,
    Suggestions,
    SuggestProducts,
)
from contracts.money import MoneyError, to_decimal
from db.prepared import json_value
from workers.catalog import facets as facet_rules
from workers.catalog.model import variant_view, with_variant_views
from workers.catalog.repository import product_columns, to_product
from workers.catalog.typos import PREFIX_FROM, Word, corrections, read_query, tsquery_text
from workers.runtime.errors import invalid
from workers.runtime.pagination import decode_keys, encode_keys

# Suggestions are ranked among the first this many products that match.
SUGGEST_CANDIDATES = 200


class _Params:
    """Positional parameters of one statement: `p(value)` is its placeholder."""

    def __init__(self, values: list[Any] | None = None) -> None:
        self.values = list(values or [])

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


class _Row:
    """An asyncpg record read where the repository reads a SQLAlchemy row (`_mapping`)."""

    def __init__(self, record: asyncpg.Record) -> None:
        self._mapping = record


# --- the text of a query ------------------------------------------------------------------


@dataclass(frozen=True)
class _Text:
    """How a search's `q` matches: `match` selects, `exact` (if any) tells the products that
    match without a correction."""

    match: str | None  # None: nothing can match (only signs, or only stop words)
    exact: str | None
    websearch: bool = False


async def _configure_and_correct(
    db: asyncpg.Connection, words: tuple[Word, ...], *, text: bool
) -> dict[str, tuple[str, ...]]:
    """Set this transaction's planner settings, and find the corrections of the words the
    catalog does not know (one round trip for both).

    Custom plans: asyncpg prepares statements, and after five runs PostgreSQL may switch to
    a generic plan that cannot see how selective this query's words and filters are
    (measured: 30 ms became 300 ms). Planning each search afresh costs well under a
    millisecond. A text search also turns sequential scans off: its matches always come
    from the GIN index, but for the facets' first 1,001 matches the planner prefers to scan
    the table and test every row (measured for "lamp" at 100,000 products: 28,000 rows tested).
    """
    variants = sorted(set().union(*(w.variants() for w in words))) if words else []
    rows = await db.fetch(
        "SELECT NULL::text AS word, 0 AS products, set_config('plan_cache_mode', 'force_custom_plan', true)"
        " || set_config('enable_seqscan', $2::text, true) AS s"
        " UNION ALL SELECT word, products, NULL FROM catalog.lexicon WHERE deletions && $1::text[] AND products > 0",
        variants,
        "off" if text else "on",
    )
    known = {row["word"]: row["products"] for row in rows if row["word"] is not None}
    found = {w.text: corrections(w, known) for w in words}
    return {word: fixes for word, fixes in found.items() if fixes}


async def _text(db: asyncpg.Connection, q: str | None) -> _Text | None:
    if not q:
        await _configure_and_correct(db, (), text=False)
        return None
    plain = read_query(q)
    if plain is None:
        await _configure_and_correct(db, (), text=True)
        return _Text(match=q, exact=None, websearch=True)
    fixes = await _configure_and_correct(db, plain.words, text=True)
    if plain.empty:
        return _Text(match=None, exact=None)
    return _Text(match=tsquery_text(plain, fixes), exact=tsquery_text(plain) if fixes else None)


# --- filters and orders ---------------------------------------------------------------------

_SUBTREE = (
    "(WITH RECURSIVE subtree(slug) AS (SELECT slug FROM catalog.categories WHERE slug = {slug}"
    " UNION ALL SELECT c.slug FROM catalog.categories c JOIN subtree t ON c.parent = t.slug)"
    " SELECT slug FROM subtree)"
)


def _tsquery(text: _Text, p: _Params, value: str) -> str:
    function = "websearch_to_tsquery" if text.websearch else "to_tsquery"
    return f"{function}('english'::regconfig, {p(value)}::text)"


def _where(cmd: SearchProducts, text: _Text | None, p: _Params) -> list[str]:
    where = ["p.deleted_at IS NULL"]
    if text is not None:
        where.append(f"p.search @@ {_tsquery(text, p, text.match)}" if text.match is not None else "false")
    if cmd.category:
        where.append(f"p.category IN {_SUBTREE.format(slug=p(cmd.category) + '::text')}")
    if cmd.currency:
        where.append(f"p.currency = {p(cmd.currency)}::text")
    if cmd.min_price is not None:
        where.append(f"p.price_amount >= {p(to_decimal(cmd.min_price))}::numeric")
    if cmd.max_price is not None:
        where.append(f"p.price_amount <= {p(to_decimal(cmd.max_price))}::numeric")
    if cmd.seller_id:
        where.append(f"p.seller_id = {p(cmd.seller_id)}::uuid")
    if cmd.in_stock is not None:
        where.append("p.available > 0" if cmd.in_stock else "p.available <= 0")
    return where


@dataclass(frozen=True)
class _Order:
    name: str  # relevance, newest, price_asc, price_desc
    descending: bool
    column: str  # the sort key's column in the page's rows
    key_type: str


def _order(cmd: SearchProducts) -> _Order:
    if cmd.sort == "relevance" and cmd.q:
        return _Order("relevance", True, "score", "float8")
    if cmd.sort in ("price_asc", "price_desc"):
        return _Order(cmd.sort, cmd.sort == "price_desc", "price_amount", "numeric")
    return _Order("newest", True, "created_at", "timestamptz")  # also relevance without a query


def _bad_cursor() -> Exception:
    return invalid("cursor", "is not a cursor this API returned for this sort")


def _after(order: _Order, cursor: str) -> tuple[Any, UUID]:
    keys = decode_keys(cursor)
    if len(keys) != 3 or keys[0] != order.name or not isinstance(keys[2], str):
        raise _bad_cursor()
    try:
        row_id = UUID(keys[2])
        key: Any
        if order.name == "relevance":
            if not isinstance(keys[1], int | float) or isinstance(keys[1], bool):
                raise _bad_cursor()
            key = float(keys[1])
        elif order.name == "newest":
            key = datetime.fromisoformat(str(keys[1]))
            if key.tzinfo is None:
                raise _bad_cursor()
        else:
            key = to_decimal(str(keys[1]))
    except (ValueError, TypeError, MoneyError):
        raise _bad_cursor() from None
    return key, row_id


def _cursor_key(value: Any) -> str | float:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return float(value)


def _score(cmd: SearchProducts, text: _Text, p: _Params) -> str:
    """Exact name, then matched as typed, then ts_rank (below 1 with normalisation 32)."""
    assert cmd.q is not None and text.match is not None
    parts = [f"CASE WHEN lower(p.name) = {p(cmd.q.lower())}::text THEN 4 ELSE 0 END"]
    if text.exact is not None:
        parts.append(f"CASE WHEN p.search @@ {_tsquery(text, p, text.exact)} THEN 2 ELSE 0 END")
    parts.append(f"ts_rank(p.search, {_tsquery(text, p, text.match)}, 32)")
    return "(" + " + ".join(parts) + ")::float8"


_COLUMNS = ", ".join(f"p.{column.name}" for column in product_columns())
# A page's products' live variants, in order, as one JSON column of each product's row:
# what a view shows of them, read in the page's own statement (no second round trip).
_VARIANTS = """(
    SELECT json_agg(json_build_object(
        'variant_id', v.variant_id, 'sku', v.sku, 'options', v.options, 'price_minor', v.price_minor,
        'compare_at_minor', v.compare_at_minor, 'weight_grams', v.weight_grams, 'available', v.available
    ) ORDER BY v.position)
    FROM catalog.variants v WHERE v.product_id = {row}.product_id AND v.deleted_at IS NULL
) AS variants"""


def _page_sql(
    cmd: SearchProducts, text: _Text | None, order: _Order, after: tuple[Any, UUID] | None
) -> tuple[str, list[Any]]:
    """The page's statement and its parameters."""
    p = _Params()
    where = _where(cmd, text, p)
    direction = "DESC" if order.descending else "ASC"
    if order.name == "relevance":
        assert text is not None
        inner = f"SELECT {_COLUMNS}, p.price_amount, {_score(cmd, text, p)} AS score FROM catalog.products p"
        sql = f"SELECT * FROM ({inner} WHERE {' AND '.join(where)}) p"
        position = "(p.score, p.product_id)"
        keyed = []
    else:
        sql = f"SELECT {_COLUMNS}, p.price_amount FROM catalog.products p"
        position = f"(p.{order.column}, p.product_id)"
        keyed = where
    if after is not None:
        bound = f"({p(after[0])}::{order.key_type}, {p(after[1])}::uuid)"
        keyed = [*keyed, f"{position} {'<' if order.descending else '>'} {bound}"]
    if keyed:
        sql += " WHERE " + " AND ".join(keyed)
    column = "score" if order.name == "relevance" else order.column
    ordered = f"ORDER BY page.{column} {direction}, page.product_id {direction}"
    sql += f" {ordered.replace('page.', 'p.')} LIMIT {p(cmd.limit + 1)}::int"
    # The variants for the page's rows only, not for every row the order had to sort.
    return f"SELECT page.*, {_VARIANTS.format(row='page')} FROM ({sql}) page {ordered}", p.values


# Each currency's band edges in minor units: integers compared, nothing divided per row.
_EDGES = ", ".join(
    f"('{code}', ARRAY[{','.join(map(str, edges))}]::bigint[])" for code, edges in facet_rules.BAND_EDGES_MINOR
)
# A category's ancestors (itself included), for the categories found in `{source}`.
_ANCESTRY = """ancestry(slug, ancestor) AS (
    SELECT slug, slug FROM catalog.categories WHERE slug IN (SELECT category FROM {source})
    UNION ALL
    SELECT a.slug, c.parent FROM ancestry a JOIN catalog.categories c ON c.slug = a.ancestor
    WHERE c.parent IS NOT NULL
)"""
# The facet rows (facet, key, currency, n) over `{source}`, a set of matches (a category
# counted with its ancestors after counting per category, not per match).
_COUNTS = """
    SELECT 'total' AS facet, NULL AS key, NULL AS currency, count(*)::int AS n FROM {source}
    UNION ALL
    SELECT 'category', a.ancestor, NULL, sum(c.n)::int
    FROM (SELECT category, count(*) AS n FROM {source} GROUP BY category) c
    JOIN ancestry a ON a.slug = c.category GROUP BY a.ancestor
    UNION ALL
    SELECT 'band', width_bucket(h.price_minor, e.edges)::text, h.currency, count(*)::int
    FROM {source} h JOIN (VALUES {edges}) AS e(currency, edges) ON e.currency = h.currency
    GROUP BY width_bucket(h.price_minor, e.edges), h.currency
"""


def _ranked_first_page_sql(cmd: SearchProducts, text: _Text) -> tuple[str, list[Any]]:
    """A text search's first page in relevance order and its facets, in one statement:
    ranking reads every match anyway, so the facets count all of them from the same rows."""
    p = _Params()
    where = " AND ".join(_where(cmd, text, p))
    # The facet rows, the page's columns empty in them (a UNION's rows all have one shape):
    # (part, score, the product's columns, price_amount, variants, then the facet's own).
    nulls = ", ".join("NULL" for _ in (*product_columns(), "price_amount", "variants"))
    counts = _COUNTS.format(source="m", edges=_EDGES).replace("SELECT '", f"SELECT 1, NULL, {nulls}, '")
    sql = f"""
        WITH RECURSIVE m AS MATERIALIZED (
            SELECT p.product_id, p.category, p.currency, p.price_minor, {_score(cmd, text, p)} AS score
            FROM catalog.products p WHERE {where}
        ), top AS (
            SELECT product_id, score FROM m ORDER BY score DESC, product_id DESC LIMIT {p(cmd.limit + 1)}::int
        ), {_ANCESTRY.format(source="m")}
        SELECT 0 AS part, t.score, {_COLUMNS}, p.price_amount, {_VARIANTS.format(row="p")},
            NULL AS facet, NULL AS facet_key, NULL AS facet_currency, NULL::int AS facet_n
        FROM top t JOIN catalog.products p ON p.product_id = t.product_id
        UNION ALL {counts}
        ORDER BY part, score DESC, product_id DESC
    """
    return sql, p.values


def _facets_sql(cmd: SearchProducts, text: _Text | None) -> tuple[str, list[Any]]:
    p = _Params()
    where = " AND ".join(_where(cmd, text, p))
    sql = f"""
        WITH RECURSIVE hits AS MATERIALIZED (
            SELECT p.category, p.currency, p.price_minor FROM catalog.products p
            WHERE {where} LIMIT {FACETS_EXACT_UP_TO + 1}
        ), {_ANCESTRY.format(source="hits")}
        {_COUNTS.format(source="hits", edges=_EDGES)}
    """
    return sql, p.values


async def _facets(db: asyncpg.Connection, cmd: SearchProducts, text: _Text | None) -> SearchFacets:
    sql, values = _facets_sql(cmd, text)
    counted = facet_rules.counted_from(tuple(row) for row in await db.fetch(sql, *values))
    estimate = None
    if counted.matches > FACETS_EXACT_UP_TO:
        p = _Params()
        where = " AND ".join(_where(cmd, text, p))
        plan = await db.fetchval(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM catalog.products p WHERE {where}", *p.values)
        if isinstance(plan, str):
            plan = json.loads(plan)
        estimate = facet_rules.rounded_estimate(float(plan[0]["Plan"]["Plan Rows"]))
    return facet_rules.facets(counted, estimate)


def _no_match_facets() -> SearchFacets:
    return SearchFacets(total=0, exact=True, categories=(), price_bands=())


async def search_products(db: asyncpg.Connection, cmd: SearchProducts) -> ProductPage:
    order = _order(cmd)
    after = _after(order, cmd.cursor) if cmd.cursor else None
    text = await _text(db, cmd.q)
    if text is not None and text.match is None:
        return ProductPage(items=(), next_cursor=None, facets=None if cmd.cursor else _no_match_facets())
    facets: SearchFacets | None = None
    if text is not None and order.name == "relevance" and after is None:
        sql, values = _ranked_first_page_sql(cmd, text)
        rows = await db.fetch(sql, *values)
        counted = facet_rules.counted_from(
            (r["facet"], r["facet_key"], r["facet_currency"], r["facet_n"]) for r in rows if r["part"]
        )
        facets = facet_rules.facets(counted, None, complete=True)
        rows = [r for r in rows if not r["part"]]
    else:
        sql, values = _page_sql(cmd, text, order, after)
        rows = await db.fetch(sql, *values)
    page = rows[: cmd.limit]
    next_cursor = None
    if len(rows) > cmd.limit:
        last = page[-1]
        next_cursor = encode_keys(order.name, _cursor_key(last[order.column]), str(last["product_id"]))
    return ProductPage(
        items=tuple(_view(row) for row in page),
        next_cursor=next_cursor,
        facets=facets or (None if cmd.cursor else await _facets(db, cmd, text)),
    )


def _view(row: asyncpg.Record) -> ProductView:
    """A page's product with its variants (their prices and availability, never a count)."""
    view = to_product(_Row(row)).view()
    options = view.options
    shown = tuple(
        variant_view(**variant, code=view.currency, product_options=options, full=False)
        for variant in json_value(row["variants"]) or ()
    )
    return with_variant_views(view, shown)


# --- autocomplete -------------------------------------------------------------------------


async def suggest_products(db: asyncpg.Connection, cmd: SuggestProducts) -> Suggestions:
    """Names of live products containing every word typed (the last as a prefix from two
    letters): those matching as typed first, then through a correction; shorter names first."""
    plain = read_query(cmd.q, operators=False)
    assert plain is not None
    if plain.empty or (len(plain.words) == 1 and not plain.exact and len(plain.words[0].text) < PREFIX_FROM):
        return Suggestions(items=())
    fixes = await _configure_and_correct(db, plain.words, text=True)
    p = _Params()
    exact = f"p.search @@ to_tsquery('english'::regconfig, {p(tsquery_text(plain, weight='A'))}::text)"
    parts = [
        f"SELECT p.product_id, p.name, 0 AS tier FROM catalog.products p"
        f" WHERE {exact} AND p.deleted_at IS NULL LIMIT {SUGGEST_CANDIDATES}"
    ]
    if fixes:
        full = f"p.search @@ to_tsquery('english'::regconfig, {p(tsquery_text(plain, fixes, weight='A'))}::text)"
        parts.append(
            f"SELECT p.product_id, p.name, 1 FROM catalog.products p"
            f" WHERE {full} AND NOT {exact} AND p.deleted_at IS NULL LIMIT {SUGGEST_CANDIDATES}"
        )
    sql = (
        "SELECT product_id, name FROM ("
        + " UNION ALL ".join(f"({part})" for part in parts)
        + f") s ORDER BY tier, length(name), name, product_id LIMIT {p(cmd.limit)}::int"
    )
    rows = await db.fetch(sql, *p.values)
    return Suggestions(items=tuple(Suggestion(product_id=row["product_id"], name=row["name"]) for row in rows))
