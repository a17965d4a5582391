// Drives our server with Apollo Client and its persisted-queries link, as a storefront
// would: hashed queries over GET, the full query only after a miss. Prints what went over
// the wire and what the client got, as one JSON line, for the Python test to check.
import { createHash } from "node:crypto";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";

const [url, slug] = process.argv.slice(2);
const wire = [];

async function recordingFetch(input, init = {}) {
  const address = new URL(typeof input === "string" ? input : input.url);
  const body = init.body ? JSON.parse(init.body) : {};
  const extensions = address.searchParams.get("extensions") ?? JSON.stringify(body.extensions ?? null);
  const response = await fetch(input, init);
  const payload = await response.clone().json();
  wire.push({
    method: init.method ?? "GET",
    sentQuery: address.searchParams.has("query") || typeof body.query === "string",
    hash: JSON.parse(extensions)?.persistedQuery?.sha256Hash ?? null,
    status: response.status,
    code: payload.errors?.[0]?.extensions?.code ?? null,
    cacheControl: response.headers.get("cache-control"),
  });
  return response;
}

function storefront() {
  const persisted = new PersistedQueryLink({
    sha256: (text) => createHash("sha256").update(text).digest("hex"),
    useGETForHashedQueries: true,
  });
  const http = new HttpLink({ uri: url, fetch: recordingFetch, useGETForQueries: true });
  return new ApolloClient({ link: persisted.concat(http), cache: new InMemoryCache() });
}

const PRODUCT = gql`
  query ProductCard($slug: String!) {
    product(slug: $slug) { id title slug priceRange { minVariantPrice { amount currencyCode } } }
  }
`;

const results = [];
for (const client of [storefront(), storefront()]) {  // a second device: a fresh client
  const { data } = await client.query({ query: PRODUCT, variables: { slug }, fetchPolicy: "network-only" });
  results.push(data);
}
console.log(JSON.stringify({ wire, results }));
