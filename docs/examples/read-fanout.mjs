// One book from polyfeed's NATS fan-out, read with nats.js alone (docs/fanout.md).
// npm install nats && node read-fanout.mjs nats://127.0.0.1:4222 [TOKEN_ID]
import { connect, DeliverPolicy } from "nats";

const js = (await connect({ servers: process.argv[2] ?? "nats://127.0.0.1:4222" })).jetstream();
const kv = await js.views.kv("POLYFEED_books"); // the latest verified snapshot of every book
let asset = process.argv[3];
if (!asset) for await (const key of await kv.keys()) { asset = key; break; }
const { seq, book } = (await kv.get(asset)).json(); // seq: the last stream sequence the snapshot includes
const sides = {}; // BUY and SELL: price text -> size text
const levels = (list) => new Map(list.map((l) => [l.price, l.size]));
const load = (b) => Object.assign(sides, { BUY: levels(b.bids), SELL: levels(b.asks) });
const best = (side, pick) => (side.size ? pick(...[...side.keys()].map(Number)) : "-");
const top = () => `${best(sides.BUY, Math.max)} / ${best(sides.SELL, Math.min)}`;
load(book);
console.log(`${asset.slice(0, 8)}... from the bucket, sequence ${seq}: ${top()} (hash ${book.hash.slice(0, 12)}...)`);
const consumer = await js.consumers.get("POLYFEED", { // then every message of this book after it, in order
  filterSubjects: `polyfeed.book.*.${asset}`,
  deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: seq + 1 });
for await (const m of await consumer.consume()) {
  const { kind, message: msg, reason } = m.json();
  if (kind === "snapshot") load(msg);
  const changes = kind === "change" ? msg.price_changes : [];
  for (const c of changes) c.size === "0" ? sides[c.side].delete(c.price) : sides[c.side].set(c.price, c.size);
  const what = changes.map((c) => `${c.side} ${c.price} x ${c.size}`).join(", ") || reason || msg?.price;
  const hash = changes.length ? `(hash ${changes.at(-1).hash.slice(0, 12)}...)` : "";
  console.log([m.seq, kind, what, "->", top(), hash].filter(Boolean).join(" "));
}
