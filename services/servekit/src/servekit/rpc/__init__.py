"""The Open Inference Protocol over gRPC (:mod:`servekit.rpc.server`), beside the REST app.

A stopping server gives the calls in flight the shutdown grace HTTP's requests get
(``<SVC>_SHUTDOWN_GRACE_SECONDS``, servekit.settings), so a long call is not cut on one protocol
while it would be answered on the other.
"""
