"""Vector indexes: one `VectorStore` protocol, embedded in the DuckDB file or on Pinecone."""
