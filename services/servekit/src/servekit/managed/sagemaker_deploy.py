"""Deploy a ``model.tar.gz`` to a SageMaker real-time endpoint, wait for it, and delete it.

    python -m servekit.managed.sagemaker_deploy deploy NAME --model-data s3://.../model.tar.gz \\
        --image-uri <sklearn serving image> --role-arn arn:aws:iam::...:role/... [--region ...]
    python -m servekit.managed.sagemaker_deploy delete NAME

``deploy`` creates the model (framework image + ``model.tar.gz``, entry point ``code/inference.py``),
an endpoint configuration and the endpoint, then waits until it is ``InService`` (or fails, with
SageMaker's failure reason). ``delete`` removes all three and tolerates any already gone.

Tests run this against ``moto``, which records the API calls and their effects but CANNOT run
real inference: it starts no container, never loads ``model.tar.gz`` and reports the endpoint
``InService`` at once. What proves the handlers right is the in-process test of
``servekit.managed.sagemaker`` against the FastAPI service; what proves the endpoint really
serves is a smoke ``invoke_endpoint`` on a real AWS account.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Where the framework containers find the entry point inside the unpacked model.tar.gz.
CONTAINER_ENV = {
    "SAGEMAKER_PROGRAM": "inference.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
}


@dataclass(frozen=True)
class Deployment:
    name: str
    model_data: str
    image_uri: str
    role_arn: str
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    service: str = ""

    @property
    def model_name(self) -> str:
        return f"{self.name}-model"

    @property
    def config_name(self) -> str:
        return f"{self.name}-config"

    def environment(self) -> dict[str, str]:
        env = dict(CONTAINER_ENV)
        if self.service:
            env["MLP_SERVICE"] = self.service
        return env


def deploy(client: Any, d: Deployment, *, delay: int = 30, max_attempts: int = 60) -> Mapping[str, Any]:
    """Create model, endpoint config and endpoint; wait for InService; the endpoint's description."""
    client.create_model(
        ModelName=d.model_name,
        ExecutionRoleArn=d.role_arn,
        PrimaryContainer={"Image": d.image_uri, "ModelDataUrl": d.model_data, "Environment": d.environment()},
    )
    client.create_endpoint_config(
        EndpointConfigName=d.config_name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": d.model_name,
                "InstanceType": d.instance_type,
                "InitialInstanceCount": d.instance_count,
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    client.create_endpoint(EndpointName=d.name, EndpointConfigName=d.config_name)
    wait(client, d.name, delay=delay, max_attempts=max_attempts)
    description: Mapping[str, Any] = client.describe_endpoint(EndpointName=d.name)
    return description


def wait(client: Any, name: str, *, delay: int = 30, max_attempts: int = 60) -> None:
    """Block until the endpoint is InService; RuntimeError with SageMaker's reason if it fails."""
    from botocore.exceptions import WaiterError

    try:
        client.get_waiter("endpoint_in_service").wait(
            EndpointName=name, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}
        )
    except WaiterError as exc:
        reason = client.describe_endpoint(EndpointName=name).get("FailureReason", str(exc))
        raise RuntimeError(f"endpoint {name} did not come into service: {reason}") from exc


def delete(client: Any, name: str) -> list[str]:
    """Delete endpoint, endpoint config and model (each if present); what was deleted."""
    from botocore.exceptions import ClientError

    deleted = []
    steps = (
        ("endpoint", client.delete_endpoint, {"EndpointName": name}),
        ("endpoint config", client.delete_endpoint_config, {"EndpointConfigName": f"{name}-config"}),
        ("model", client.delete_model, {"ModelName": f"{name}-model"}),
    )
    for what, call, kwargs in steps:
        try:
            call(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("ValidationException", "ResourceNotFound"):
                raise
            continue
        deleted.append(what)
    return deleted


def main(argv: Sequence[str] | None = None) -> int:
    import boto3

    from servekit.cli.common import documented_parser

    root = documented_parser("sagemaker_deploy", (__doc__ or "").split("\n\n")[0])
    root.add_argument("--region")
    sub = root.add_subparsers(dest="command", required=True)
    up = sub.add_parser("deploy")
    up.add_argument("name")
    up.add_argument("--model-data", required=True, help="s3:// URI of model.tar.gz")
    up.add_argument("--image-uri", required=True, help="SageMaker scikit-learn serving image")
    up.add_argument("--role-arn", required=True)
    up.add_argument("--instance-type", default="ml.m5.large")
    up.add_argument("--instance-count", type=int, default=1)
    up.add_argument("--service", default="")
    down = sub.add_parser("delete")
    down.add_argument("name")
    args = root.parse_args(argv)
    client = boto3.client("sagemaker", region_name=args.region)
    if args.command == "deploy":
        d = Deployment(
            args.name,
            args.model_data,
            args.image_uri,
            args.role_arn,
            args.instance_type,
            args.instance_count,
            args.service,
        )
        endpoint = deploy(client, d)
        print(f"{d.name}: {endpoint['EndpointStatus']} ({endpoint['EndpointArn']})")
    else:
        print(f"{args.name}: deleted {', '.join(delete(client, args.name)) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
