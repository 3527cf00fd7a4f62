import { state } from "nuvola";
import { Bytes, read, respond, start } from "../../guests/timed";

// The shopping cart of bench/suite/crud-api/reference.ts on nuvola's state store: each item a
// key (pushed to the global tier on write, pulled from it on read), each cart's item names an
// appended list (kept in the global tier).

function decode(b: Uint8Array): string {
  return String.UTF8.decodeUnsafe(b.dataStart, <usize>b.length);
}

function encode(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

function itemKey(cart: string, name: string): string {
  return "crud:" + cart + ":" + name;
}

function fetch(key: string): string {
  state.pull(key);
  return decode(state.read(key));
}

export function main(): i32 {
  const t = start();
  const input = read();
  const lines = decode(input).split("\n");
  const out = new Bytes(16 * lines.length);
  for (let l = 0; l < lines.length; l++) {
    const p = lines[l].split(" ");
    const op = p[0];
    const cart = p.length > 1 ? p[1] : "";
    const index = "crud:" + cart;
    if (l > 0) out.byte(10);
    if (op == "RESET") {
      const names = state.readAppended(index);
      for (let i = 0; i < names.length; i++) state.delete(itemKey(cart, decode(names[i])));
      state.clearAppended(index);
      out.str("ok");
    } else if (op == "PUT") {
      const key = itemKey(cart, p[2]);
      if (fetch(key).length == 0) state.append(index, encode(p[2]));
      state.write(key, encode(p[3] + " " + p[4]));
      state.push(key);
      out.str("ok");
    } else if (op == "GET") {
      const v = fetch(itemKey(cart, p[2]));
      out.str(p[2]);
      out.str(v.length == 0 ? " missing" : " " + v);
    } else if (op == "QUERY") {
      const names = state.readAppended(index);
      let total: i64 = 0;
      for (let i = 0; i < names.length; i++) {
        const v = fetch(itemKey(cart, decode(names[i])));
        const pq = v.length == 0 ? ["0", "0"] : v.split(" ");
        total += I64.parseInt(pq[0]) * I64.parseInt(pq[1]);
      }
      out.str(cart + " " + names.length.toString() + " " + total.toString());
    }
  }
  respond(t, out.view());
  return 0;
}
