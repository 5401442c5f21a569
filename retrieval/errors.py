"""Exceptions raised when an on-disk index cannot be used.

They share one base class so callers can catch ``IndexLoadError`` and rebuild the index from the source
of truth (the ticket database) whatever the reason was.
"""

from __future__ import annotations


class IndexLoadError(Exception):
    """An index file or directory cannot be loaded; rebuilding it from the source data fixes this."""


class IndexCorrupt(IndexLoadError):
    """The file is damaged: bad magic, truncated, bad header, failed checksum or inconsistent contents."""


class IndexFormatMismatch(IndexLoadError):
    """The file was written by another on-disk format version of this code."""


class KnowledgeBaseStale(IndexLoadError):
    """The saved knowledge base does not match what we need: no manifest, another embedding model or
    dimension, or files from different saves (a crash between file writes). Never mix them: rebuild."""
