"""Vouchers: admin-managed discount codes; a checkout applies one and its saga holds a use."""
