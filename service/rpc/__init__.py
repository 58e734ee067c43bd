"""gRPC API of radtranslate: contract in ``protos/radtranslate/v1``, server, client, security, metrics."""
