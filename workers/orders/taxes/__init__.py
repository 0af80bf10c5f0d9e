"""Taxes: admin-managed rates and currency settings; an order's tax lines at placement."""
