"""Retrieval for the workshop's RAG chat: load, chunk, index, search and prompt, without Chainlit.

``app.py`` is the only module that imports Chainlit; everything here can be imported and tested
outside the container (``tests/unit/test_rag_*.py`` do).
"""
