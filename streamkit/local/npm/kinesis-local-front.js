// Preloaded (node --require) into kinesis-local only: a foreign stream ARN is ResourceNotFoundException.
'use strict'
//
// kinesis-local (kinesis-mock) takes StreamARN but serves its stream for an ARN of any account. It reads
// requests through raw sockets (no http module to hook), so streamkit starts it on an inner loopback port
// (KINESIS_MOCK_PLAIN_PORT) and this front listens on the stack's port (STREAMKIT_FRONT_PORT), in the same
// process:
// - HTTP/1.1 (boto3, the CLI): a JSON request naming a foreign ARN is answered here (local-arns.js); every
//   other request goes to kinesis-local, its answer streamed back as it comes (SubscribeToShard's events
//   arrive as they are sent, not when the subscription ends);
// - HTTP/2 without TLS (the JVM KCL, "prior knowledge": its first bytes are "PRI * HTTP/2.0") is piped
//   both ways untouched.
// Without STREAMKIT_FRONT_PORT nothing changes.
const front = Number(process.env.STREAMKIT_FRONT_PORT || 0)
if (front) {
  const http = require('http')
  const net = require('net')
  const path = require('path')
  const { requestNamingArn, foreignProblem, notFound } = require(path.join(__dirname, 'local-arns.js'))
  const HOST = '127.0.0.1'
  const inner = Number(process.env.KINESIS_MOCK_PLAIN_PORT)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256, noDelay: true })
  const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'])

  const headersWithoutHops = function (headers) {
    const out = {}
    for (const k of Object.keys(headers)) if (!HOP.has(k)) out[k] = headers[k]
    return out
  }

  const web = http.createServer(function (req, res) {
    const chunks = []
    req.on('data', function (c) { chunks.push(c) })
    req.on('end', function () {
      const body = Buffer.concat(chunks)
      const data = req.method === 'POST' ? requestNamingArn(req.headers, body) : null
      const problem = data !== null ? foreignProblem(req.headers, data) : null
      if (problem) return notFound(res, problem)
      const headers = headersWithoutHops(req.headers)
      headers['content-length'] = String(body.length)
      const up = http.request({ host: HOST, port: inner, method: req.method, path: req.url, headers, agent },
        function (answer) {
          const out = headersWithoutHops(answer.headers)
          res.writeHead(answer.statusCode, out)
          if (typeof res.flushHeaders === 'function') res.flushHeaders()
          answer.pipe(res)
        })
      // kinesis-local not (yet) there, or gone: the client sees the connection drop, as it would without us.
      up.on('error', function () { req.socket.destroy() })
      res.on('close', function () { if (!res.writableFinished) up.destroy() })  // the client left mid-answer
      up.end(body)
    })
  })
  web.keepAliveTimeout = 65000

  net.createServer(function (sock) {
    sock.setNoDelay(true)
    sock.once('data', function (first) {
      sock.pause()
      if (first.length >= 3 && first.subarray(0, 3).toString() === 'PRI') {
        const up = net.connect(inner, HOST, function () {
          up.setNoDelay(true)
          up.write(first)
          sock.pipe(up)
          up.pipe(sock)
          sock.resume()
        })
        up.on('error', function () { sock.destroy() })
        sock.on('error', function () { up.destroy() })
        sock.on('close', function () { up.destroy() })
      } else {
        sock.unshift(first)
        web.emit('connection', sock)
        sock.resume()
      }
    })
    sock.on('error', function () {})
  }).listen(front, HOST)
}
