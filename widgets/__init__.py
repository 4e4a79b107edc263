"""Textual widgets and screens. They render `console.model` records and post messages; no IO here."""
