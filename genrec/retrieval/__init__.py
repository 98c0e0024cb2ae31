"""Retrieval for GPT4Rec: BM25 over item titles (bm25s) and the rank-based merge of query results."""
