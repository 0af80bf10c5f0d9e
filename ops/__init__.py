"""Operator tooling: the `agora` command and what only it calls (broker users, seed
data, partners, the API documents). Nothing in the product imports this package."""
