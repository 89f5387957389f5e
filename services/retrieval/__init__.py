"""The knowledge base: articles and chunking, embeddings, the vector index and hybrid search."""
