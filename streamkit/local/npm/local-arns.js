// Stream ARNs on the local servers (required by kinesalite-arns.js and kinesis-local-front.js).
'use strict'
//
// The rule of streamkit's limit proxy (streamkit.kinesis_types.foreign_arn_problem): an ARN (StreamARN, or
// the stream part of a ConsumerARN) of an account other than the local one, or of a region other than the
// one the request is signed for, names a stream this server does not hold; AWS answers such a call 400
// ResourceNotFoundException "Stream NAME under account ACCOUNT not found.". streamkit passes the local
// account in STREAMKIT_LOCAL_ACCOUNT, so that it is written once.

const ACCOUNT = process.env.STREAMKIT_LOCAL_ACCOUNT || '000000000000'
const ARN = /^arn:aws[a-z-]*:kinesis:([a-z0-9-]+):(\d{12}):stream\/([A-Za-z0-9_.-]+)$/
const MARK = Buffer.from('ARN"')
const JSON_TYPE = 'application/x-amz-json-1.1'

function signingRegion (headers) {
  const scope = ((headers.authorization || '').split('Credential=')[1] || '').split(',')[0].split('/')
  return scope.length >= 5 ? scope[2] : 'us-east-1'
}

function problemOf (arn, region) {
  const m = ARN.exec(String(arn).split('/consumer/')[0])
  if (!m) return null
  const [, arnRegion, account, name] = m
  return account !== ACCOUNT || arnRegion !== region ? 'Stream ' + name + ' under account ' + account + ' not found.' : null
}

// The JSON request body, if it names an ARN (one substring search decides for every other request); else null.
function requestNamingArn (headers, body) {
  const type = (headers['content-type'] || '').split(';')[0].trim()
  if (type !== JSON_TYPE || body.indexOf(MARK) < 0) return null
  try {
    const data = JSON.parse(body.toString('utf8'))
    return data !== null && typeof data === 'object' ? data : null
  } catch (e) {
    return null  // the server says what is wrong with it
  }
}

// Why the request names a stream this server does not hold, or null.
function foreignProblem (headers, data) {
  const region = signingRegion(headers)
  for (const key of ['StreamARN', 'ConsumerARN']) {
    if (typeof data[key] === 'string') {
      const problem = problemOf(data[key], region)
      if (problem) return problem
    }
  }
  return null
}

function streamNameOf (arn) {
  const m = ARN.exec(String(arn))
  return m ? m[3] : null
}

function notFound (res, message) {
  const body = JSON.stringify({ __type: 'ResourceNotFoundException', message })
  res.statusCode = 400
  res.setHeader('Content-Type', JSON_TYPE)
  res.setHeader('Content-Length', Buffer.byteLength(body))
  res.end(body)
}

module.exports = { requestNamingArn, foreignProblem, streamNameOf, notFound }
