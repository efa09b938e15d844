"""A small shop: stock and customer accounts."""
