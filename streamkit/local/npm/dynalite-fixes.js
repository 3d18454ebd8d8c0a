// Preloaded (node --require) into dynalite only; two fixes.
'use strict'
//
// 1. A client killed in the middle of a request (a worker SIGKILLed mid-call) made dynalite 4.0.0 exit:
//    its request handler rethrows the socket's 'aborted' error (index.js: req.on('error', ... throw err)).
//    A request its client abandoned is dropped; any other uncaught error still ends the process, as before.
process.on('uncaughtException', function (err) {
  if (err && err.code === 'ECONNRESET' && err.message === 'aborted') return
  console.error(err && err.stack ? err.stack : err)
  process.exit(1)
})

// 2. UpdateTable can create a global secondary index, as
// DynamoDB's can. dynalite 4.0.0 requires ProvisionedThroughput on GlobalSecondaryIndexUpdates.Create
// (even on an on-demand table) and then ignores the Create. KCL 3 adds its LeaseOwnerToLeaseKeyIndex
// to a lease table it created this way, so without this a JVM KCL cannot start on a new table.
// The index is filled from the items already in the table before the call returns, and is ACTIVE.
const path = require('path')

const root = path.dirname(require.resolve(path.resolve(process.argv[1])))
const validation = require(path.join(root, 'validations', 'updateTable'))
const db = require(path.join(root, 'db'))
const actionPath = require.resolve(path.join(root, 'actions', 'updateTable'))
const original = require(actionPath)

const create = validation.types.GlobalSecondaryIndexUpdates.children.children.Create.children
delete create.ProvisionedThroughput.notNull  // any notNull key is checked, whatever its value
validation.types.AttributeDefinitions = {
  type: 'List',
  children: {
    type: 'ValueStruct<AttributeDefinition>',
    children: {
      AttributeName: { type: 'String', notNull: true },
      AttributeType: { type: 'String', notNull: true, enum: ['B', 'N', 'S'] },
    },
  },
}

function backfill (store, table, indexes, cb) {
  const view = Object.assign({}, table, { LocalSecondaryIndexes: [], GlobalSecondaryIndexes: indexes })
  const items = []
  store.getItemDb(table.TableName).createValueStream()
    .on('data', function (item) { items.push(item) })
    .on('error', cb)
    .on('end', function () {
      let i = 0
      const next = function (err) {
        if (err) return cb(err)
        if (i >= items.length) return cb(null, items.length)
        db.updateIndexes(store, view, null, items[i++], next)
      }
      next()
    })
}

function updateTable (store, data, cb) {
  const updates = data.GlobalSecondaryIndexUpdates || []
  const creates = updates.filter(function (u) { return u.Create }).map(function (u) { return u.Create })
  if (!creates.length) return original(store, data, cb)
  if (creates.length !== updates.length || data.ProvisionedThroughput || data.BillingMode) {
    return cb(db.validationError('One or more parameter values were invalid: ' +
      'create a global secondary index in an UpdateTable call of its own'))
  }
  const key = data.TableName
  store.tableDb.lock(key, function (release) {
    cb = release(cb)
    store.getTable(key, false, function (err, table) {
      if (err) return cb(err)
      const existing = table.GlobalSecondaryIndexes || []
      const defs = (table.AttributeDefinitions || []).slice()
      ;(data.AttributeDefinitions || []).forEach(function (d) {
        if (!defs.some(function (x) { return x.AttributeName === d.AttributeName })) defs.push(d)
      })
      const added = []
      for (const c of creates) {
        if (existing.some(function (i) { return i.IndexName === c.IndexName })) {
          return cb(db.validationError('One or more parameter values were invalid: Index with name: ' +
            c.IndexName + ' already exists'))
        }
        for (const k of c.KeySchema) {
          if (!defs.some(function (d) { return d.AttributeName === k.AttributeName })) {
            return cb(db.validationError('One or more parameter values were invalid: ' +
              'Some index key attributes are not defined in AttributeDefinitions. Keys: [' + k.AttributeName + ']'))
          }
        }
        added.push({
          IndexName: c.IndexName,
          KeySchema: c.KeySchema,
          Projection: c.Projection,
          IndexStatus: 'ACTIVE',
          ProvisionedThroughput: Object.assign({ ReadCapacityUnits: 0, WriteCapacityUnits: 0 },
            c.ProvisionedThroughput || {}, { NumberOfDecreasesToday: 0 }),
          IndexSizeBytes: 0,
          ItemCount: 0,
          IndexArn: 'arn:aws:dynamodb:' + store.tableDb.awsRegion + ':' + store.tableDb.awsAccountId + ':table/' +
            key + '/index/' + c.IndexName,
        })
      }
      table.AttributeDefinitions = defs
      backfill(store, table, added, function (err) {
        if (err) return cb(err)
        table.GlobalSecondaryIndexes = existing.concat(added)
        store.tableDb.put(key, table, function (err) {
          if (err) return cb(err)
          cb(null, { TableDescription: table })
        })
      })
    })
  })
}

require.cache[actionPath].exports = updateTable
