// Post-processes ts-proto's output (run by gen-proto.sh), for the cost of every decoded request:
//
//  - a decoded `bytes` field is a view of the input (Buffer.from(reader.bytes()) copied each one
//    into Node's buffer pool): whoever keeps bytes beyond the message copies them itself, as the
//    MVCC store does for keys and values, so a put's key and value are copied once, not twice.
//    Nothing in raftkv writes into a decoded message's bytes. A reader over a Buffer already
//    hands out Buffer views (Buffer's own subarray), which are kept as they are: a second view
//    of the same bytes was two typed-array objects per bytes field of every decoded request.
//  - an empty `bytes` default is one shared zero-length Buffer (which nothing can write into),
//    not two fresh allocations per PutRequest built.
//  - ts-proto's decode recursion limit of 100 messages deep is raised to 1000: a Txn nested 50
//    deep (TxnRequest and RequestOp are two levels each) is valid for etcd, which refuses nesting
//    only past --max-txn-ops (128 levels of one op) with "too many operations in txn request".
//    Still bounded, so that no request can exhaust the stack.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MARKER = '// raftkv (scripts/gen-proto-post.mjs)';
const EMPTY = 'const EMPTY_BYTES: Buffer = Buffer.alloc(0);';
const VIEW = 'function bytesView(b: Uint8Array): Buffer {\n  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);\n}';

function files(dir) {
  return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : n.endsWith('.ts') ? [join(dir, n)] : []));
}

const DEPTH_LIMIT = /previousRecursionDepth >= 100\b/g;

for (const f of files(process.argv[2] ?? 'src/gen')) {
  const read = readFileSync(f, 'utf8');
  const src = read.replace(DEPTH_LIMIT, 'previousRecursionDepth >= 1000');
  if (src !== read) writeFileSync(f, src);
  if (src.includes(MARKER)) continue; // already done (run twice)
  const helpers = [];
  if (src.includes('Buffer.alloc(0)')) helpers.push(EMPTY);
  if (src.includes('Buffer.from(reader.bytes())')) helpers.push(VIEW);
  if (helpers.length === 0) continue;
  const lines = src.replaceAll('Buffer.from(reader.bytes())', 'bytesView(reader.bytes())').replaceAll('Buffer.alloc(0)', 'EMPTY_BYTES').split('\n');
  let lastImport = -1;
  for (let i = 0; i < lines.length; i++) if (/^import .*;$/.test(lines[i]) || /^} from ".*";$/.test(lines[i])) lastImport = i;
  lines.splice(lastImport + 1, 0, '', `${MARKER}: decoded bytes are views of the input; empty bytes are shared.`, ...helpers);
  writeFileSync(f, lines.join('\n'));
}
