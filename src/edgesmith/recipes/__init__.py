"""Shipped build recipes (package data): ``edgesmith build --recipe NAME`` or the default."""
