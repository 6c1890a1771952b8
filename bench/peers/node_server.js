// node-server: the reverse server as a Node user writes it with the net
// module: the first 'data' event is the message, end() sends its reversal and
// closes.  A peer for bench/compare.
//
// usage: node node_server.js [PORT]   (0: a free port, printed on stderr)
'use strict';
const net = require('net');

const server = net.createServer((socket) => {
  socket.once('data', (data) => socket.end(data.reverse()));
  socket.on('error', () => {});
});
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  console.error(`node-server: listening on 127.0.0.1:${server.address().port}`);
});
