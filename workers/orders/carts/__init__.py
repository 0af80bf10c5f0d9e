"""Carts: a guest's or a member's, priced from the product read model."""
