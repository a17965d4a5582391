"""Redis stores: carts, rate limits, persisted documents, the record cache, skip windows."""
