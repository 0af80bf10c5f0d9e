"""Shipping methods: admin-managed, priced per currency; a checkout picks one."""
