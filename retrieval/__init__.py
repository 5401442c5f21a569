"""Retrieval core for Switchboard: embeddings, a FAISS vector index, a BM25 index and a hybrid knowledge base.

Plain Python on purpose: no Django, and the heavy libraries (torch, sentence-transformers, FAISS, SciPy)
are imported lazily inside the functions that need them, so importing this package stays cheap for the
web process. The Django glue (models, services, management commands) lives beside it and owns the I/O.
"""
