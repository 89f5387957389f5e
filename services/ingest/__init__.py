"""Ingestion: readers for files and feeds, knowledge-base sync and the library tagger."""
