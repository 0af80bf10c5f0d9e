"""Database plumbing: engines and sessions, table definitions per schema, migrations."""
