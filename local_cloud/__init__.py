"""The local cloud: moto plus the managed glue moto lacks, so the stack runs on one machine.

The same CloudFormation template and the same Lambda handlers as on AWS, in one process:

    runtime          LocalCloud: start() / stop() / wait_idle(), the whole thing as one object
    emulator         moto's server on 127.0.0.1 (the AWS endpoint), configured for all of this
    patches          the few changes to moto's behaviour, each documented with what moto does
    functions        FunctionRuntime: Lambda functions run in-process with their configuration
    stream_mappings  EventSourceMappingRunner: DynamoDB-stream mappings with all their settings
    stream_shard     the per-shard batching and retry rules (no I/O)
    stream_records   the stream event and on-failure record documents (no I/O)
    eventbridge      delivery to Step Functions and Lambda targets
    deployer         deploy_stack(): package, adapt for moto, deploy, complete, compute outputs
    template         CloudFormation YAML/JSON into plain data
    packaging        local code paths into an artifact in the local S3
    moto_template    the template rewritten so moto takes it, with the same AWS meaning
    post_steps       what moto's CloudFormation ignores, done through the service APIs
    intrinsics       Ref / GetAtt / Sub / ... evaluated outside CloudFormation
    stack_values     Ref and GetAtt values of deployed resources, read from the services
    clients          boto3 clients on the endpoint from one shared session
"""
