import { Bytes, read, respond, start, Xorshift32 } from "../../guests/timed";

function escape(out: Bytes, s: string): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 38) out.str("&amp;");
    else if (c == 60) out.str("&lt;");
    else if (c == 62) out.str("&gt;");
    else if (c == 34) out.str("&quot;");
    else if (c == 39) out.str("&#39;");
    else out.str(String.fromCharCode(c));
  }
}

export function main(): i32 {
  const t = start();
  const bytes = read();
  const lines = String.UTF8.decodeUnsafe(bytes.dataStart, <usize>bytes.length).split("\n");
  const count = I32.parseInt(lines[1]);
  const seed = lines[2];
  const r = new Xorshift32(<u32>U32.parseInt(seed));
  const out = new Bytes(64 + count * 16);
  out.str('<!DOCTYPE html>\n<html>\n<head>\n<title>Randomly generated data.</title>\n<meta charset="utf-8">\n</head>\n<body>\n<p>Welcome ');
  escape(out, lines[0]);
  out.str("!</p>\n<p>Data generated from seed ");
  out.str(seed);
  out.str(":</p>\n<ul>\n");
  for (let i = 0; i < count; i++) {
    if (i > 0) out.byte(10);
    out.str("<li>");
    out.uint(r.next() % 1000000);
    out.str("</li>");
  }
  out.str("\n</ul>\n</body>\n</html>\n");
  respond(t, out.view());
  return 0;
}
