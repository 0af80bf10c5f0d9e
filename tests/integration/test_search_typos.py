"""Search that forgives typos, autocomplete, facets and prices in one currency, through the
HTTP API and against the database (issue 17, points 4 and 5; the rules: workers/catalog/typos.py)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.catalog import SearchProducts
from harness.accounts import bearer, make_seller
from tests.catalog_support import create_category, create_product, new_tag
from workers.catalog import facets as facet_rules
from workers.catalog import search


@pytest.fixture(scope="module")
async def seller(http: aiohttp.ClientSession, admin: dict[str, Any]) -> dict[str, Any]:
    return await make_seller(http, admin)


@pytest.fixture
async def category(http: aiohttp.ClientSession, admin: dict[str, Any]) -> str:
    """A category of the test's own: its searches see only its products."""
    slug = f"typos-{new_tag()}"
    await create_category(http, admin, slug)
    return slug


async def _get(http: aiohttp.ClientSession, path: str, **params: Any) -> dict[str, Any]:
    query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
    async with http.get(path, params=query) as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body


async def _ids(http: aiohttp.ClientSession, **params: Any) -> list[str]:
    return [p["product_id"] for p in (await _get(http, "/api/products", **params))["items"]]


async def _problem(http: aiohttp.ClientSession, path: str, **params: str) -> dict[str, Any]:
    async with http.get(path, params=params) as resp:
        assert resp.status == 422, await resp.text()
        assert resp.content_type == "application/problem+json"
        body: dict[str, Any] = await resp.json()
        return body


# --- typos ----------------------------------------------------------------------------------


async def test_a_transposition_and_a_typo_in_a_four_letter_word_find_the_product(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str
) -> None:
    lantern = await create_product(http, seller, category, name=f"Camping Lantern {new_tag()}")
    lamp = await create_product(http, seller, category, name=f"Desk Lamp {new_tag()}")
    headphones = await create_product(http, seller, category, name=f"Wireless Headphones {new_tag()}")
    for q, product in (
        ("lantren", lantern),  # a swap of two adjacent letters: one typo
        ("lmap", lamp),  # four letters: one typo forgiven
        ("camping lantren", lantern),
        ("lantren camping", lantern),
        ("headphnes", headphones),  # nine letters: one missing
        ("wirless headphnes", headphones),
        ("hedphnes", headphones),  # nine letters, two typos
        ("Desk LMAP", lamp),
    ):
        assert product["product_id"] in await _ids(http, q=q, category=category), q


async def test_words_that_must_not_match(http: aiohttp.ClientSession, seller: dict[str, Any], category: str) -> None:
    mug = await create_product(http, seller, category, name=f"Cat Mug {new_tag()}")
    couch = await create_product(http, seller, category, name=f"Couch Cover {new_tag()}")
    router = await create_product(http, seller, category, name=f"Router X200 {new_tag()}")
    lamp = await create_product(http, seller, category, name=f"Floor Lamp {new_tag()}")
    for q, product in (("cat", mug), ("couch", couch), ("x200", router), ("lamp", lamp)):
        assert product["product_id"] in await _ids(http, q=q, category=category), q
    for q, product in (
        ("cst mug", mug),  # three letters, one typo: under four letters a word is spelled exactly
        ("cta mug", mug),
        ("cuohc cover", couch),  # five letters, two typos (two swaps): only one forgiven
        ("x201", router),  # a number one digit off is another number
        ("router x20", router),  # numbers are not prefixes either
        ("lmpa floor", lamp),  # four letters, two typos
    ):
        assert product["product_id"] not in await _ids(http, q=q, category=category), q


async def test_exact_matches_rank_above_corrected_ones(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str
) -> None:
    # Words of the test's own: `typed` is known to no product, `completed` starts with it
    # (a prefix: matched as typed) and `corrected` is one typo from it.
    tag = new_tag()
    typed, completed, corrected = f"{tag}a", f"{tag}ab", f"{tag}c"
    by_correction = await create_product(http, seller, category, name=f"Gizmo {corrected}")
    as_typed = await create_product(http, seller, category, name=f"Gizmo {completed} with a longer name")
    assert await _ids(http, q=typed, category=category) == [as_typed["product_id"], by_correction["product_id"]]
    # Not as the last word, `typed` is no prefix: both match through a correction only.
    both = await _ids(http, q=f"{typed} gizmo", category=category)
    assert sorted(both) == sorted([as_typed["product_id"], by_correction["product_id"]])


async def test_the_last_word_matches_as_a_prefix(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str
) -> None:
    product = await create_product(http, seller, category, name=f"Wireless Headphones {new_tag()}")
    for q in ("wireless hea", "headph", "wireless he"):
        assert product["product_id"] in await _ids(http, q=q, category=category), q
    for q in ("hea wireless", "wireless h"):  # a complete word is a word; a prefix needs two letters
        assert product["product_id"] not in await _ids(http, q=q, category=category), q


async def test_operators_mean_exactly_what_they_say(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str
) -> None:
    red = await create_product(http, seller, category, name="Red Kettle")
    blue = await create_product(http, seller, category, name="Blue Kettle")
    assert await _ids(http, q="kettle -red", category=category) == [blue["product_id"]]
    assert await _ids(http, q='"red kettle"', category=category) == [red["product_id"]]
    assert await _ids(http, q='"red kettel"', category=category) == []  # no corrections inside operators


# --- the lexicon ----------------------------------------------------------------------------


async def _uses(db: AsyncEngine, word: str) -> int | None:
    async with db.connect() as conn:
        found = await conn.scalar(text("SELECT products FROM catalog.lexicon WHERE word = :w"), {"w": word})
    return None if found is None else int(found)


async def test_the_lexicon_follows_the_products(
    http: aiohttp.ClientSession, db: AsyncEngine, seller: dict[str, Any], category: str
) -> None:
    word, renamed = f"zq{new_tag()}", f"zx{new_tag()}"
    first = await create_product(http, seller, category, name=f"Widget {word}")
    assert await _uses(db, word) == 1  # in the creating transaction: no delay
    second = await create_product(http, seller, category, name="Widget", description=f"Goes with a {word}.")
    assert await _uses(db, word) == 2
    auth = bearer(seller["access_token"])
    async with http.put(f"/api/products/{first['product_id']}", json={"name": f"Widget {renamed}"}, headers=auth) as r:
        assert r.status == 200, await r.text()
    assert (await _uses(db, word), await _uses(db, renamed)) == (1, 1)
    async with http.delete(f"/api/products/{second['product_id']}", headers=auth) as r:
        assert r.status == 204, await r.text()
    assert (await _uses(db, word), await _uses(db, renamed)) == (None, 1)
    # A typo of the new name finds the product (two letters swapped, in a 12-letter word).
    swapped = renamed[:3] + renamed[4] + renamed[3] + renamed[5:]
    assert await _ids(http, q=swapped, category=category) == [first["product_id"]]


async def test_the_lexicon_and_the_query_agree_on_deletions(db: AsyncEngine) -> None:
    from workers.catalog.typos import lexicon_variants

    async with db.connect() as conn:
        for word in ("cat", "lamp", "lantern", "keyboard", "headphones", "naïve"):
            stored = await conn.scalar(text("SELECT catalog.word_deletions(:w)"), {"w": word})
            assert set(stored) == lexicon_variants(word), word


# --- autocomplete ---------------------------------------------------------------------------


async def test_suggestions(http: aiohttp.ClientSession, seller: dict[str, Any], category: str) -> None:
    tag = new_tag()
    longer = await create_product(http, seller, category, name=f"Wireless Headphones {tag}")
    shorter = await create_product(http, seller, category, name=f"Wireless Headset {tag}")
    await create_product(http, seller, category, name=f"Wired Earbuds {tag}", description="Not wireless.")
    expected = [
        {"product_id": shorter["product_id"], "name": shorter["name"]},
        {"product_id": longer["product_id"], "name": longer["name"]},
    ]
    assert (await _get(http, "/api/products/suggest", q=f"{tag} wireless hea"))["items"] == expected
    assert (await _get(http, "/api/products/suggest", q=f"{tag} wirelss hea"))["items"] == expected  # a typo
    assert (await _get(http, "/api/products/suggest", q=f"wireless {tag[:5]}"))["items"] == expected
    assert (await _get(http, "/api/products/suggest", q=f"{tag} wireless hea", limit=1))["items"] == expected[:1]
    assert (await _get(http, "/api/products/suggest", q="w"))["items"] == []  # one letter: too many to choose from
    assert (await _get(http, "/api/products/suggest", q=f'"{tag} wireless -hea'))["items"] == expected
    for params in ({}, {"q": ""}, {"q": "lamp", "limit": "11"}, {"q": "lamp", "limit": "0"}, {"q": "x" * 101}):
        await _problem(http, "/api/products/suggest", **params)


# --- facets ---------------------------------------------------------------------------------


async def test_facets_count_categories_with_their_subtrees_and_price_bands_per_currency(
    http: aiohttp.ClientSession, admin: dict[str, Any], seller: dict[str, Any]
) -> None:
    tag = new_tag()
    root, left, right = f"facets-{tag}", f"facets-{tag}-left", f"facets-{tag}-right"
    await create_category(http, admin, root)
    await create_category(http, admin, left, parent=root)
    await create_category(http, admin, right, parent=root)
    await create_product(http, seller, left, price="5.00", name=f"Cheap thing {tag}")
    await create_product(http, seller, left, price="30.00", name=f"Dear thing {tag}")
    await create_product(http, seller, right, price="30.00", currency="EUR", name=f"Euro thing {tag}")
    await create_product(http, seller, root, price="1500", currency="JPY", name=f"Yen thing {tag}")

    page = await _get(http, "/api/products", category=root, limit=1)
    facets = page["facets"]
    assert (facets["total"], facets["exact"]) == (4, True)
    assert facets["categories"] == [
        {"category": root, "count": 4},
        {"category": left, "count": 2},
        {"category": right, "count": 1},
    ]
    assert facets["price_bands"] == [
        {"currency": "EUR", "min": "25.00", "max": "50.00", "count": 1},
        {"currency": "JPY", "min": "1000", "max": "2500", "count": 1},
        {"currency": "USD", "min": "0.00", "max": "10.00", "count": 1},
        {"currency": "USD", "min": "25.00", "max": "50.00", "count": 1},
    ]
    # Facets come with a first page only.
    assert (await _get(http, "/api/products", category=root, limit=1, cursor=page["next_cursor"]))["facets"] is None
    # Over a text search, and with filters.
    found = (await _get(http, "/api/products", q=f"thing {tag}"))["facets"]
    assert found["total"] == 4 and {"category": left, "count": 2} in found["categories"]
    in_usd = (await _get(http, "/api/products", q=f"thing {tag}", currency="USD", max_price="10"))["facets"]
    assert (in_usd["total"], [b["count"] for b in in_usd["price_bands"]]) == (1, [1])
    nothing = await _get(http, "/api/products", q=f"nothing {tag}")
    assert nothing["items"] == [] and nothing["facets"]["total"] == 0


async def test_above_the_bound_the_total_is_an_estimate(
    db: AsyncEngine, http: aiohttp.ClientSession, seller: dict[str, Any], category: str, monkeypatch: Any
) -> None:
    """The catalog's own query with the bound lowered to 2 (it is 1,000 in the API)."""
    for i in range(5):
        await create_product(http, seller, category, price=f"{i + 1}.00")
    monkeypatch.setattr(search, "FACETS_EXACT_UP_TO", 2)
    monkeypatch.setattr(facet_rules, "FACETS_EXACT_UP_TO", 2)
    async with db.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        async with raw.transaction():
            page = await search.search_products(raw, SearchProducts(category=category, limit=1))
    assert page.facets is not None and not page.facets.exact
    assert page.facets.total >= 3  # the planner's estimate, never below the three counted
    assert page.facets.categories[0].category == category and page.facets.categories[0].count == page.facets.total


# --- prices in one currency -----------------------------------------------------------------


async def test_price_filters_and_orders_never_mix_currencies(
    http: aiohttp.ClientSession, seller: dict[str, Any], category: str
) -> None:
    usd = [await create_product(http, seller, category, price=p) for p in ("40.00", "5.00", "60.00")]
    await create_product(http, seller, category, price="50", currency="JPY")  # 50 yen is less than 1 dollar
    await create_product(http, seller, category, price="20.00", currency="EUR")
    for params in ({"min_price": "10"}, {"max_price": "100"}, {"sort": "price_asc"}, {"sort": "price_desc"}):
        problem = await _problem(http, "/api/products", category=category, **params)
        assert [e["field"] for e in problem["errors"]] == ["currency"], params
    cheapest_first = await _ids(http, category=category, currency="USD", sort="price_asc")
    assert cheapest_first == [usd[1]["product_id"], usd[0]["product_id"], usd[2]["product_id"]]
    page = await _get(http, "/api/products", category=category, currency="USD", min_price="10", sort="price_desc")
    assert [(p["price"], p["currency"]) for p in page["items"]] == [("60.00", "USD"), ("40.00", "USD")]
    assert {b["currency"] for b in page["facets"]["price_bands"]} == {"USD"}
