"""Collectors: one module per kind of source. None of them imports Textual."""
