"""Search indexes: SQL (PostgreSQL, SQLite), Elasticsearch, and the Redis answer cache."""
