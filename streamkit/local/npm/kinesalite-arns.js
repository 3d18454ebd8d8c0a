// Preloaded (node --require) into kinesalite only: stream ARNs, as Kinesis takes them.
'use strict'
//
// kinesalite 3.3.3 predates the StreamARN parameter: a call naming its stream by ARN only (GetShardIterator,
// PutRecords, ListShards, DescribeStreamSummary, ...) failed with "Value null at 'streamName'", the stack's
// own ARN included. Here, before kinesalite reads a JSON request that names an ARN, a foreign ARN is
// answered ResourceNotFoundException (local-arns.js), and a local StreamARN given without a StreamName
// becomes that StreamName (kinesalite knows names only). Any other request is handed over as it came.
const http = require('http')
const path = require('path')
const { PassThrough } = require('stream')
const { requestNamingArn, foreignProblem, streamNameOf, notFound } = require(path.join(__dirname, 'local-arns.js'))

function withArns (handler) {
  return function (req, res) {
    if (req.method !== 'POST') return handler(req, res)
    const chunks = []
    req.on('data', function (c) { chunks.push(c) })
    req.on('end', function () {
      let body = Buffer.concat(chunks)
      const data = requestNamingArn(req.headers, body)
      if (data !== null) {
        const problem = foreignProblem(req.headers, data)
        if (problem) return notFound(res, problem)
        if (typeof data.StreamARN === 'string') {
          const name = streamNameOf(data.StreamARN)
          if (data.StreamName === undefined && name) data.StreamName = name
          delete data.StreamARN
          body = Buffer.from(JSON.stringify(data))
        }
      }
      const inner = new PassThrough()
      inner.headers = Object.assign({}, req.headers, { 'content-length': String(body.length) })
      inner.method = req.method
      inner.url = req.url
      inner.httpVersion = req.httpVersion
      inner.socket = inner.connection = req.socket
      handler(inner, res)
      inner.end(body)
    })
  }
}

const createServer = http.createServer
http.createServer = function (...args) {
  const i = args.findIndex(function (a) { return typeof a === 'function' })
  if (i >= 0) args[i] = withArns(args[i])
  return createServer.apply(this, args)
}
