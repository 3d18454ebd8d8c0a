// Preloaded (node --require) into every local server streamkit starts: forces each listening
// socket onto 127.0.0.1. kinesalite has no host option and kinesis-local hard-codes 0.0.0.0.
'use strict'
const net = require('net')
const LOOPBACK = '127.0.0.1'
const listen = net.Server.prototype.listen

net.Server.prototype.listen = function (...args) {
  const first = args[0]
  if (args.length === 0 || typeof first === 'function') {
    args.unshift(0, LOOPBACK)
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    if (typeof args[1] === 'string') args[1] = LOOPBACK
    else args.splice(1, 0, LOOPBACK)
  } else if (first !== null && typeof first === 'object' && !('fd' in first) && !('_handle' in first) && !('path' in first)) {
    args[0] = Object.assign({}, first, { host: LOOPBACK })
  }
  return listen.apply(this, args)
}
