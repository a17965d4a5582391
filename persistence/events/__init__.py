"""Events: the outbox, its relay to Redis Streams, the stream consumers and the worker."""
