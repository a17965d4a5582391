// graphql-http's server audit (the GraphQL-over-HTTP spec's own test suite) against our
// server; prints every result as one JSON line for tests/e2e/test_graphql_over_http_audit.py.
import { auditServer } from "graphql-http";

const [url] = process.argv.slice(2);
const results = await auditServer({ url });
console.log(
  JSON.stringify(
    await Promise.all(
      results.map(async (r) => ({
        id: r.id,
        name: r.name,
        status: r.status,
        reason: r.status === "ok" ? null : r.reason,
      })),
    ),
  ),
);
