"""The Open Inference Protocol over gRPC (:mod:`servekit.rpc.server`), beside the REST app."""

#: How long a stopping server waits for the requests and calls in flight before it cuts them:
#: uvicorn's graceful shutdown for HTTP (``mlp serve``) and the gRPC server's stop alike, so a
#: long call is not cut on one protocol while it would be answered on the other. Here, not in
#: the CLI, so reading it imports no gRPC and no CLI. Kubernetes' terminationGracePeriodSeconds
#: (k8s/base/services/model-server.yaml) holds the preStop sleep and this.
SHUTDOWN_GRACE_SECONDS = 20
