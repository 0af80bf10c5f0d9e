"""Table definitions, one module per service schema (`db.tables.orders` holds the orders
service's tables, and only the orders worker imports it: import-linter checks). `base`
has what every schema shares; `every_schema` gathers them for migrations and the runtime."""
