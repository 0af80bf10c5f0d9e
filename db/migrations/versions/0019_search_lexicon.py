"""Search that forgives typos (issue 17): the catalog's lexicon, kept current by triggers.

`catalog.lexicon` holds every word (3 to 32 letters, no digits) of the live products'
names and descriptions, with how many live products use it, and its `deletions` (the
word, and what deleting one letter leaves from 4 letters on, up to two from 8) under a GIN
index: the search finds the known words within a typo budget of a query word by the
deletions they share (workers/catalog/typos.py says why that finds them all).

Triggers keep it current whatever writes the products (a delivery, the bulk seed, a
migration), in the writing transaction: a row trigger on INSERT, DELETE and the UPDATEs
that change a name, a description or whether the product is live (a stock update does not
fire it) appends each word's change to `lexicon_pending`, and a constraint trigger deferred
to COMMIT folds the transaction's changes into the counts once. Folding once matters: a
bulk insert sent row by row (asyncpg's executemany) that updated the counts of "with" and
"for" 2,000 times in one transaction walked ever longer chains of row versions (measured:
seeding 100,000 products took 20 minutes; folded once, 139 s). The fold takes the words'
locks in word order, so two transactions never wait on each other's words in opposite orders;
it updates a known word's count and inserts a new word with its deletions
(`catalog.word_deletions`, about half a millisecond a word: a generated column would be
computed again on every count update); a word no live product uses any more is deleted.

Price filters and price sorts now always name a currency, so the price index leads with it;
the trigram index on names, which the old typo match used, goes.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-10
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# The words of a product's text, as PostgreSQL's parser reads them (the `search` vector
# uses the same parser): lowercased, no stemming; words with digits or signs are left out
# (they match exactly only), as are words too short to be a typo of anything.
_WORDS = r"""
CREATE FUNCTION catalog.lexicon_words(name text, description text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT word FROM unnest(tsvector_to_array(to_tsvector('simple'::regconfig, name || ' ' || description))) AS word
    WHERE char_length(word) BETWEEN 3 AND 32 AND word !~ '[[:digit:][:punct:]]'
$$;

CREATE FUNCTION catalog.word_deletions(word text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(DISTINCT v ORDER BY v) FROM (
        SELECT word AS v
        UNION ALL
        SELECT overlay(word PLACING '' FROM i FOR 1)
        FROM generate_series(1, char_length(word)) AS i
        WHERE char_length(word) >= 4
        UNION ALL
        SELECT overlay(overlay(word PLACING '' FROM j FOR 1) PLACING '' FROM i FOR 1)
        FROM generate_series(1, char_length(word)) AS i, generate_series(i + 1, char_length(word)) AS j
        WHERE char_length(word) >= 8
    ) AS variants
$$;
"""

# (After the tables: a SQL function's body is checked when it is created.)
_MAINTENANCE = r"""
CREATE FUNCTION catalog.products_lexicon() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'DELETE' AND NEW.deleted_at IS NULL THEN
        INSERT INTO catalog.lexicon_pending (word, delta)
        SELECT w, 1 FROM catalog.lexicon_words(NEW.name, NEW.description) AS w;
    END IF;
    IF TG_OP <> 'INSERT' AND OLD.deleted_at IS NULL THEN
        INSERT INTO catalog.lexicon_pending (word, delta)
        SELECT w, -1 FROM catalog.lexicon_words(OLD.name, OLD.description) AS w;
    END IF;
    IF current_setting('agora.lexicon_pending', true) IS DISTINCT FROM 'yes' THEN
        PERFORM set_config('agora.lexicon_pending', 'yes', true);
        INSERT INTO catalog.lexicon_fold DEFAULT VALUES;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION catalog.lexicon_fold() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change record;
    emptied text[] := '{}';
BEGIN
    FOR change IN
        WITH taken AS (
            DELETE FROM catalog.lexicon_pending WHERE txid = txid_current() RETURNING word, delta
        )
        SELECT word, sum(delta)::integer AS delta FROM taken
        GROUP BY word HAVING sum(delta) <> 0
        ORDER BY word COLLATE "C"
    LOOP
        UPDATE catalog.lexicon SET products = products + change.delta WHERE word = change.word;
        IF NOT FOUND THEN
            INSERT INTO catalog.lexicon AS l (word, products, deletions)
            VALUES (change.word, change.delta, catalog.word_deletions(change.word))
            ON CONFLICT (word) DO UPDATE SET products = l.products + EXCLUDED.products;
        END IF;
        IF change.delta < 0 THEN
            emptied := emptied || change.word;
        END IF;
    END LOOP;
    DELETE FROM catalog.lexicon WHERE word = ANY(emptied) AND products <= 0;
    DELETE FROM catalog.lexicon_fold WHERE txid = txid_current();
    RETURN NULL;
END $$;
"""

_TRIGGERS = """
CREATE TRIGGER products_lexicon AFTER INSERT OR DELETE ON catalog.products
    FOR EACH ROW EXECUTE FUNCTION catalog.products_lexicon();

CREATE TRIGGER products_lexicon_update AFTER UPDATE OF name, description, deleted_at ON catalog.products
    FOR EACH ROW WHEN (
        OLD.name IS DISTINCT FROM NEW.name
        OR OLD.description IS DISTINCT FROM NEW.description
        OR (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL)
    ) EXECUTE FUNCTION catalog.products_lexicon();

CREATE CONSTRAINT TRIGGER lexicon_fold AFTER INSERT ON catalog.lexicon_fold
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION catalog.lexicon_fold();
"""


def _each(statements: str) -> None:
    # One statement per call: asyncpg prepares what it runs, and a prepared statement is one.
    for statement in statements.split("\n\n"):
        op.execute(statement)


def upgrade() -> None:
    _each(_WORDS)
    op.create_table(
        "lexicon",
        sa.Column("word", sa.Text(collation="C"), primary_key=True),
        sa.Column("products", sa.Integer, nullable=False),
        sa.Column("deletions", postgresql.ARRAY(sa.Text), nullable=False),
        schema="catalog",
    )
    op.create_index("ix_lexicon_deletions", "lexicon", ["deletions"], postgresql_using="gin", schema="catalog")
    for table in ("lexicon_pending", "lexicon_fold"):
        columns: list[sa.Column[Any]] = [
            sa.Column("txid", sa.BigInteger, server_default=sa.text("txid_current()"), nullable=False)
        ]
        if table == "lexicon_pending":
            columns += [sa.Column("word", sa.Text, nullable=False), sa.Column("delta", sa.Integer, nullable=False)]
        op.create_table(table, *columns, schema="catalog")
        op.create_index(f"ix_{table}_txid", table, ["txid"], schema="catalog")
    _each(_MAINTENANCE)
    _each(_TRIGGERS)
    op.execute(
        "INSERT INTO catalog.lexicon (word, products, deletions)"
        " SELECT w, count(*), catalog.word_deletions(w) FROM catalog.products,"
        " catalog.lexicon_words(name, description) AS w WHERE deleted_at IS NULL GROUP BY w"
    )
    # Typos are the lexicon's now; the trigram match on names has no query left.
    op.drop_index("ix_products_name_trgm", table_name="products", schema="catalog")
    op.drop_index("ix_products_price", table_name="products", schema="catalog")
    op.create_index(
        "ix_products_currency_price",
        "products",
        ["currency", "price_amount", "product_id"],
        schema="catalog",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )


def downgrade() -> None:
    op.execute("CREATE INDEX ix_products_name_trgm ON catalog.products USING gin (name gin_trgm_ops)")
    op.drop_index("ix_products_currency_price", table_name="products", schema="catalog")
    op.create_index(
        "ix_products_price",
        "products",
        ["price_amount", "product_id"],
        schema="catalog",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.execute("DROP TRIGGER products_lexicon ON catalog.products")
    op.execute("DROP TRIGGER products_lexicon_update ON catalog.products")
    for table in ("lexicon_fold", "lexicon_pending", "lexicon"):
        op.drop_table(table, schema="catalog")
    for function in ("products_lexicon()", "lexicon_fold()", "word_deletions(text)", "lexicon_words(text, text)"):
        op.execute(f"DROP FUNCTION catalog.{function}")
