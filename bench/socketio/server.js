// The Socket.IO 4 peer: the same 1:1 relay between authenticated users as
// chatd's, as a Socket.IO user would write it. WebSocket transport only,
// MessagePack parser, no compression. Each user authenticates with its own
// token in the handshake (middleware); a message goes to the recipient's
// room with a per-conversation seq, and the sender gets an acknowledgement.
// No store: this is the peer's best case.
//
// Groups, as chatd's are used by the fan-out scenario: one member creates a
// group (`create_group {title, members}`, acked with its id), the server
// keeps its members, each member joins its room (`join_group {conv}`, the
// server checks membership), and a `send {conv, client_id, text}` from a
// member goes to every other socket in the room (`socket.to(room)`: all
// but the sending connection, like chatd's pushes) with a per-group seq,
// and is acked to the sender.
//
// Several nodes (the cross-node relay of issue 21): `--redis URL` puts the
// nodes on one Redis with `@socket.io/redis-adapter`, so that `io.to(room)`
// on one node reaches the sockets of that room on the others; node B reads
// node A's users and tokens (`--tokens-in FILE`, the file node A wrote) so
// that both nodes authenticate the same users. The adapter is the classic
// one (`createAdapter`, plain PUBLISH and one PSUBSCRIBE per node), not the
// sharded one (`createShardedAdapter`, SPUBLISH and an SSUBSCRIBE per room):
// the classic adapter is the default the Socket.IO documentation sets up,
// and chatd's broker also runs on plain pub/sub, so both cross the same
// kind of Redis. What stays per process: the per-conversation seqs and the
// groups, as chatd's memory stores keep each conversation on each node (the
// relay reads no seqs).
//
//   node server.js --users N --tokens FILE [--port 0]
//   node server.js --users N --tokens FILE --redis redis://127.0.0.1:PORT/          # node A
//   node server.js --tokens-in FILE --redis redis://127.0.0.1:PORT/                 # node B
// Writes `username user_id token` lines to FILE (or reads them from the
// FILE of --tokens-in), then prints host:port once listening (and, with
// --redis, once connected to Redis).
'use strict';
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const { Server } = require('socket.io');
const parser = require('socket.io-msgpack-parser');

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, v, i, a) => (v.startsWith('--') ? acc.concat([[v.slice(2), a[i + 1]]]) : acc), []));
const byToken = new Map();
if (args['tokens-in']) {
  for (const line of fs.readFileSync(args['tokens-in'], 'utf8').split('\n')) {
    const [name, id, token] = line.trim().split(/\s+/);
    if (name && id && token) byToken.set(token, { id, name });
  }
} else {
  const users = Number(args.users || 100);
  const lines = [];
  for (let i = 0; i < users; i++) {
    const token = crypto.randomBytes(32).toString('base64url');
    const user = { id: crypto.randomUUID(), name: `lt${i}` };
    byToken.set(token, user);
    lines.push(`${user.name} ${user.id} ${token}`);
  }
  fs.writeFileSync(args.tokens, lines.join('\n') + '\n');
}

const seqs = new Map();
// Group id -> { members: Set of user ids, seq }.
const groups = new Map();
const httpServer = http.createServer();
const io = new Server(httpServer, {
  parser,
  transports: ['websocket'],
  perMessageDeflate: false,
  serveClient: false,
  maxHttpBufferSize: 65536,
});
io.use((socket, next) => {
  const user = byToken.get(socket.handshake.auth && socket.handshake.auth.token);
  if (!user) return next(new Error('unauthenticated'));
  socket.data.user = user;
  next();
});
io.on('connection', (socket) => {
  const me = socket.data.user;
  socket.join(me.id);
  socket.on('create_group', (req, ack) => {
    if (typeof ack !== 'function') return;
    if (!req || typeof req.title !== 'string' || !Array.isArray(req.members) || req.members.length > 999) {
      return ack({ error: 'invalid_frame' });
    }
    const conv = `g:${crypto.randomUUID()}`;
    groups.set(conv, { members: new Set([me.id, ...req.members.filter((m) => typeof m === 'string')]), seq: 0 });
    ack({ conv });
  });
  socket.on('join_group', (req, ack) => {
    if (typeof ack !== 'function') return;
    const group = req && typeof req.conv === 'string' ? groups.get(req.conv) : undefined;
    if (!group || !group.members.has(me.id)) return ack({ error: 'not_found' });
    socket.join(req.conv);
    ack({ conv: req.conv });
  });
  socket.on('send', (msg, ack) => {
    if (msg && typeof msg.conv === 'string' && typeof msg.text === 'string') {
      const group = groups.get(msg.conv);
      if (!group || !group.members.has(me.id)) {
        if (typeof ack === 'function') ack({ error: 'not_found' });
        return;
      }
      const seq = ++group.seq;
      socket.to(msg.conv).emit('message', { conv: msg.conv, seq, from: me.id, client_id: msg.client_id, ts: Date.now(), text: msg.text });
      if (typeof ack === 'function') ack({ conv: msg.conv, seq });
      return;
    }
    if (!msg || typeof msg.to !== 'string' || typeof msg.text !== 'string') {
      if (typeof ack === 'function') ack({ error: 'invalid_frame' });
      return;
    }
    const conv = me.id < msg.to ? `dm:${me.id}:${msg.to}` : `dm:${msg.to}:${me.id}`;
    const seq = (seqs.get(conv) || 0) + 1;
    seqs.set(conv, seq);
    io.to(msg.to).emit('message', { conv, seq, from: me.id, client_id: msg.client_id, ts: Date.now(), text: msg.text });
    if (typeof ack === 'function') ack({ conv, seq });
  });
});
async function main() {
  if (args.redis) {
    const { createClient } = require('redis');
    const { createAdapter } = require('@socket.io/redis-adapter');
    const pub = createClient({ url: args.redis });
    const sub = pub.duplicate();
    for (const c of [pub, sub]) c.on('error', (e) => console.error('redis:', e.message));
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
    // The adapter subscribes without waiting: a round trip on the
    // subscriber's connection (PSUBSCRIBE and SUBSCRIBE go first) before
    // saying it is ready, so no message of another node is missed.
    await sub.pSubscribe('chatcore-bench-ready', () => {});
  }
  httpServer.listen(Number(args.port || 0), '127.0.0.1', () => {
    const a = httpServer.address();
    console.log(`${a.address}:${a.port}`);
  });
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
