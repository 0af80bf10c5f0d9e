"""The demo catalog: a category tree and about 1,000 products of two sellers, with stock;
some with size and colour variants (their own SKUs, prices and stock), each with images.

`seed_catalog` goes through the public API like any client (admin for categories,
each seller for their own products) and creates only what is missing, so it is
idempotent and resumable. `bulk_products` tops the catalog up to a benchmark size
(100,000 products) straight in the catalog schema, in batches: through the API that
would take an hour. Each bulk product also gets its `catalog.product_created.v1` row in
the catalog outbox, in the same transaction, so the relay publishes them and the
inventory service creates their stock records, exactly as for a product listed
through the API.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from contracts.catalog import CreateProduct
from kernel.settings import Settings
from workers.catalog.handlers import add_products
from workers.catalog.model import Product, new_product
from workers.catalog.repository import CatalogRepository
from workers.runtime.context import operator_unit_of_work

DEMO_SELLERS = ("carol@example.com", "erin@example.com")
DEMO_PRODUCTS = 1000
_CONCURRENCY = 16
_BATCH = 2000

# root → child → leaves (slug, name, nouns sold there)
TREE: dict[tuple[str, str], dict[tuple[str, str], dict[tuple[str, str], tuple[str, ...]]]] = {
    ("electronics", "Electronics"): {
        ("audio", "Audio"): {
            ("headphones", "Headphones"): ("Headphones", "Earbuds", "Headset"),
            ("speakers", "Speakers"): ("Speaker", "Soundbar", "Subwoofer"),
        },
        ("computers", "Computers"): {
            ("laptops", "Laptops"): ("Laptop", "Notebook", "Ultrabook"),
            ("keyboards", "Keyboards"): ("Keyboard", "Keypad", "Mouse"),
            ("monitors", "Monitors"): ("Monitor", "Display", "Screen"),
        },
        ("cameras", "Cameras"): {
            ("digital-cameras", "Digital cameras"): ("Camera", "Camcorder"),
            ("lenses", "Lenses"): ("Lens", "Zoom Lens", "Prime Lens"),
        },
    },
    ("home", "Home & Kitchen"): {
        ("kitchen", "Kitchen"): {
            ("cookware", "Cookware"): ("Frying Pan", "Saucepan", "Dutch Oven", "Wok"),
            ("appliances", "Small appliances"): ("Kettle", "Toaster", "Blender", "Coffee Maker"),
        },
        ("furniture", "Furniture"): {
            ("chairs", "Chairs"): ("Chair", "Stool", "Armchair"),
            ("tables", "Tables"): ("Desk", "Table", "Side Table"),
        },
        ("lighting", "Lighting"): {("lamps", "Lamps"): ("Desk Lamp", "Floor Lamp", "Pendant Light")},
    },
    ("sports", "Sports & Outdoors"): {
        ("outdoor", "Outdoor"): {
            ("camping", "Camping"): ("Tent", "Sleeping Bag", "Camping Stove", "Lantern"),
            ("hiking", "Hiking"): ("Backpack", "Hiking Boots", "Trekking Poles"),
        },
        ("fitness", "Fitness"): {
            ("yoga", "Yoga"): ("Yoga Mat", "Yoga Block", "Strap"),
            ("weights", "Weights"): ("Dumbbell", "Kettlebell", "Barbell"),
        },
    },
    ("books", "Books"): {
        ("fiction", "Fiction"): {
            ("mystery", "Mystery"): ("Mystery Novel", "Detective Story"),
            ("science-fiction", "Science fiction"): ("Space Opera", "Sci-Fi Novel"),
        },
        ("non-fiction", "Non-fiction"): {
            ("cooking-books", "Cooking"): ("Cookbook", "Baking Guide"),
            ("history", "History"): ("History Book", "Biography"),
        },
    },
}
_ADJECTIVES = (
    "Classic", "Compact", "Deluxe", "Ergonomic", "Foldable", "Lightweight", "Modern", "Portable", "Premium",
    "Rugged", "Sleek", "Smart", "Vintage", "Wireless", "Professional", "Eco", "Heavy-Duty", "Minimalist",
)  # fmt: skip
_MATERIALS = ("Walnut", "Steel", "Aluminium", "Bamboo", "Carbon", "Ceramic", "Cotton", "Leather", "Oak", "Glass")
_BRANDS = ("Acme", "Northwind", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Vandelay")
_FEATURES = (
    "built to last", "easy to clean", "with a two-year warranty", "designed in Copenhagen", "loved by reviewers",
    "made from recycled materials", "for everyday use", "ideal as a gift", "energy efficient", "quiet in use",
)  # fmt: skip


# Products sold in sizes and colours: noun → options (name, values). Shoes by EU size.
_VARIANTS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "Hiking Boots": (("Size", ("39", "40", "41", "42", "43", "44", "45")), ("Colour", ("Brown", "Black"))),
    "Backpack": (("Capacity", ("20 L", "30 L", "45 L")), ("Colour", ("Forest Green", "Slate Grey"))),
    "Sleeping Bag": (("Length", ("Regular", "Long")),),
    "Yoga Mat": (("Colour", ("Plum", "Teal", "Charcoal")), ("Thickness", ("4 mm", "6 mm"))),
    "Chair": (("Colour", ("Natural", "Black", "White")),),
    "Headphones": (("Colour", ("Black", "Silver", "Midnight Blue")),),
}


def categories() -> Iterator[tuple[str, str, str | None]]:
    """(slug, name, parent) of the whole tree, parents first."""
    for (root, root_name), children in TREE.items():
        yield root, root_name, None
        for (child, child_name), leaves in children.items():
            yield child, child_name, root
            for leaf, leaf_name in leaves:
                yield leaf, leaf_name, child


def _leaves() -> list[tuple[str, tuple[str, ...]]]:
    return [
        (leaf[0], nouns) for children in TREE.values() for leaves in children.values() for leaf, nouns in leaves.items()
    ]


def demo_product(index: int) -> dict[str, Any]:
    """The `index`-th demo product: the same body every time, so a re-run finds it by name."""
    rng = random.Random(index)
    slug, nouns = rng.choice(_leaves())
    noun = rng.choice(nouns)
    name = f"{rng.choice(_BRANDS)} {rng.choice(_ADJECTIVES)} {rng.choice(_MATERIALS)} {noun} {100 + index}"
    code = "EUR" if index % 10 == 0 else "USD"
    cents = rng.choice((99, 49, 0, 95))
    body: dict[str, Any] = {
        "name": name,
        "description": f"A {noun.lower()} {rng.choice(_FEATURES)}, {rng.choice(_FEATURES)}.",
        "price": f"{rng.randint(3, 900)}.{cents:02d}",
        "currency": code,
        "category": slug,
        "image_url": f"https://images.example.com/products/{index}.jpg",
        "stock": rng.choice((0, 3, 10, 25, 50, 100)),
    }
    if noun in _VARIANTS:
        return _with_variants(body, index, noun)
    return body


def _with_variants(body: dict[str, Any], index: int, noun: str) -> dict[str, Any]:
    """The product in sizes and colours: every combination, each with its SKU, stock (some
    sold out, some low) and, for the larger sizes, a little more; three images."""
    rng = random.Random(f"variants-{index}")  # apart from the body's draws: names and prices stay
    options = _VARIANTS[noun]
    combinations: list[tuple[str, ...]] = [()]
    for _, values in options:
        combinations = [(*c, v) for c in combinations for v in values]
    base = to_minor_units(body["price"])
    variants = []
    for position, combination in enumerate(combinations):
        step = position // len(options[-1][1])  # later values of the first option cost a little more
        minor = base + step * 500
        variants.append(
            {
                "sku": "-".join(["D", str(index), *(v.replace(" ", "").upper()[:6] for v in combination)]),
                "options": dict(zip((name for name, _ in options), combination, strict=True)),
                "price": _amount(minor),
                # Every third such product is on sale: its former price shown struck out.
                "compare_at_price": _amount(minor * 5 // 4) if index % 3 == 0 else None,
                "weight_grams": rng.choice((250, 400, 800, 1200)),
                "stock": rng.choice((0, 2, 4, 12, 30, 60)),
            }
        )
    images = [
        {"url": f"https://images.example.com/products/{index}-{view}.jpg", "alt": f"{body['name']}, {view}"}
        for view in ("front", "side", "detail")
    ]
    body = {k: v for k, v in body.items() if k not in ("stock", "image_url")}
    listed = [{"name": name, "values": list(values)} for name, values in options]
    return {**body, "options": listed, "variants": variants, "images": images}


def to_minor_units(price: str) -> int:
    """A demo price ("12.95", two decimals in both demo currencies) in cents."""
    whole, _, cents = price.partition(".")
    return int(whole) * 100 + int(cents or 0)


def _amount(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


async def seed_catalog(
    http: aiohttp.ClientSession, admin_auth: dict[str, str], password: str
) -> list[uuid.UUID] | None:
    """Categories as the admin, then each demo seller's half of the products as that seller.

    Returns the sellers' ids, or None after a failure (already printed).
    """
    for slug, name, parent in categories():
        body = {"slug": slug, "name": name, "parent": parent}
        async with http.post("/api/categories", json=body, headers=admin_auth) as resp:
            if resp.status not in (201, 409):
                print(f"seed: category {slug} failed: {resp.status} {await resp.text()}")
                return None
    print(f"seed: {sum(1 for _ in categories())} categories")
    seller_ids: list[uuid.UUID] = []
    for number, email in enumerate(DEMO_SELLERS):
        async with http.post("/api/users/login", json={"email": email, "password": password}) as resp:
            if resp.status != 200:
                print(f"seed: cannot sign in as {email} ({resp.status})")
                return None
            session = await resp.json()
        seller_ids.append(uuid.UUID(session["user"]["user_id"]))
        auth = {"Authorization": f"Bearer {session['access_token']}"}
        have = await _names_of(http, session["user"]["user_id"])
        wanted = [demo_product(i) for i in range(number, DEMO_PRODUCTS, len(DEMO_SELLERS))]
        missing = [p for p in wanted if p["name"] not in have]
        if not missing:
            print(f"seed: {email} has its {len(wanted)} demo products already")
            continue
        if not await _create_all(http, auth, missing, f"{email} products"):
            return None
    return seller_ids


async def _names_of(http: aiohttp.ClientSession, seller_id: str) -> set[str]:
    return set(await products_of(http, seller_id))


async def products_of(http: aiohttp.ClientSession, seller_id: str) -> dict[str, dict[str, Any]]:
    """A seller's products as the catalog lists them, by name."""
    found: dict[str, dict[str, Any]] = {}
    params = {"seller_id": seller_id, "sort": "newest", "limit": "100"}
    while True:
        async with http.get("/api/products", params=params) as resp:
            resp.raise_for_status()
            page = await resp.json()
        found |= {p["name"]: p for p in page["items"]}
        if not page["next_cursor"]:
            return found
        params["cursor"] = page["next_cursor"]


async def _create_all(
    http: aiohttp.ClientSession, auth: dict[str, str], bodies: list[dict[str, Any]], label: str
) -> bool:
    slots = asyncio.Semaphore(_CONCURRENCY)
    failures: list[str] = []
    with _progress() as progress:
        task = progress.add_task(label, total=len(bodies))

        async def create(body: dict[str, Any]) -> None:
            async with slots, http.post("/api/products", json=body, headers=auth) as resp:
                if resp.status != 201:
                    failures.append(f"{resp.status} {await resp.text()}")
            progress.advance(task)

        await asyncio.gather(*(create(body) for body in bodies))
    if failures:
        print(f"seed: {len(failures)} products failed, e.g. {failures[0]}")
    return not failures


def _progress() -> Progress:
    return Progress(TextColumn("seed: {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())


async def bulk_products(settings: Settings, total: int, seller_ids: list[uuid.UUID]) -> int:
    """Add products (with their `product_created` events) until the catalog holds `total`,
    in units of work of the catalog's schema, as the catalog worker adds one."""
    async with operator_unit_of_work(settings, "catalog") as ctx:
        have = await CatalogRepository(ctx.session).count_products()
    if have >= total:
        print(f"seed: the catalog holds {have} products already (wanted {total})")
        return 0
    start = datetime.now(UTC) - timedelta(days=365)
    with _progress() as progress:
        task = progress.add_task("bulk products", total=total - have)
        for first in range(have, total, _BATCH):
            batch = [
                _bulk_product(index, seller_ids[index % len(seller_ids)], start)
                for index in range(first, min(first + _BATCH, total))
            ]
            async with operator_unit_of_work(settings, "catalog") as ctx:
                await add_products(ctx, batch)
            progress.advance(task, len(batch))
    print(f"seed: {total - have} products added; their stock records follow as inventory consumes the events")
    return 0


def _bulk_product(index: int, seller_id: uuid.UUID, start: datetime) -> Product:
    body = demo_product(index)
    # The bulk products are the benchmark's: their SKUs would clash with the demo products'.
    for variant in body.get("variants", ()):
        variant["sku"] = None
    created = start + timedelta(seconds=index * 30)
    return new_product(CreateProduct.model_validate(body), uuid.uuid4(), seller_id, created, uuid.uuid4)
