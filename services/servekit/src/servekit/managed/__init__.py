"""Managed endpoints as a complement to the FastAPI service on Kubernetes (see the ADR in the README).

- :mod:`servekit.managed.sagemaker`: SageMaker inference-toolkit handlers (``model_fn``,
  ``transform_fn``; ``input_fn``, ``predict_fn``, ``output_fn`` are its parts);
- :mod:`servekit.managed.vertex`: a Vertex AI Custom Prediction Routine ``Handler`` and ``Predictor``;
- :mod:`servekit.managed.packaging`: ``mlp package-sagemaker`` (``model.tar.gz``);
- :mod:`servekit.managed.sagemaker_deploy`: create model / endpoint config / endpoint, wait, delete.

Every transport validates with the service's request model and runs
:func:`servekit.inference.run_model` on the service's own ``ServedModel`` class, so
predictions and explanations are the REST service's, byte for byte, and so are the refusals of
bad instances and of bodies over the service's limits, with their status codes: through
``transform_fn`` in the three SageMaker toolkits, and through ``ServekitHandler`` on Vertex (with
the SDK's default handler, Vertex wraps them in ``{"detail": ...}``). What REST takes elsewhere
(the options, as query parameters) or not at all (CSV) is refused in the same error body, worded
for the transport; see each module.
"""
