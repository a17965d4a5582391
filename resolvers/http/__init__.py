"""The HTTP edge: GraphQL over HTTP, persisted queries and partner keys, request bodies,
middleware, webhooks."""
