"""The boto3 adapters: the only library code (with the DynamoDB checkpoint store, the local stack and
the pytest plugin) that imports boto3 or botocore.

- `clients.aws_client`: every boto3 client streamkit makes (endpoint, region, local credentials);
- `kinesis.BotoKinesis`: the `streamkit.transport.KinesisTransport` over a boto3 client;
- `errors`: botocore exceptions translated into the `streamkit.errors` tree, once;
- `sqs.BotoSqs`, `lambda_.BotoLambda`: the SQS and Lambda calls of the destinations and the dispatcher;
- `wire`: PutRecords request bodies written directly.
"""
