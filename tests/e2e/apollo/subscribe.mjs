// Subscribes with graphql-ws's client (the library GraphiQL and most storefronts use for
// graphql-transport-ws), as a storefront would: connectionParams carry the bearer token.
// Prints {"ready": true} once the connection is acknowledged and the subscription sent,
// then the first event's payload, each as one JSON line, and exits.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, productId, token] = process.argv.slice(2);
const print = (value) => process.stdout.write(JSON.stringify(value) + "\n");

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  lazy: false,
  retryAttempts: 0,
  connectionParams: token ? { Authorization: `Bearer ${token}` } : {},
});

const query = `subscription Inventory($id: ID!) {
  productInventoryChanged(productId: $id) { title variants { quantityAvailable } }
}`;

const first = new Promise((resolve, reject) => {
  client.on("connected", () => {
    const unsubscribe = client.subscribe(
      { query, variables: { id: productId } },
      {
        next: (value) => {
          unsubscribe();
          resolve(value);
        },
        error: reject,
        complete: () => reject(new Error("completed before an event")),
      },
    );
    print({ ready: true });
  });
  client.on("closed", (event) => reject(new Error(`closed ${event.code} ${event.reason}`)));
});

const timer = setTimeout(() => {
  print({ error: "no event within 20 s" });
  process.exit(1);
}, 20_000);
try {
  print({ event: await first });
} catch (error) {
  print({ error: String(error) });
  process.exitCode = 1;
} finally {
  clearTimeout(timer);
  await client.dispose();
}
