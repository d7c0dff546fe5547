"""The SageMaker deploy script against moto (API calls and state only: moto runs no inference)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from servekit.managed import sagemaker_deploy
from servekit.managed.sagemaker_deploy import Deployment

ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.client("sagemaker", region_name="us-east-1")


def test_deploy_waits_for_in_service_and_delete_removes_everything(client: Any) -> None:
    d = Deployment("bankchurn-prod", "s3://models/bankchurn/model.tar.gz", IMAGE, ROLE, service="bankchurn")
    endpoint = sagemaker_deploy.deploy(client, d, delay=1, max_attempts=5)
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == "bankchurn-prod-config"

    model = client.describe_model(ModelName="bankchurn-prod-model")
    container = model["PrimaryContainer"]
    assert container["ModelDataUrl"] == d.model_data
    assert container["Image"] == IMAGE
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["MLP_SERVICE"] == "bankchurn"
    config = client.describe_endpoint_config(EndpointConfigName="bankchurn-prod-config")
    assert config["ProductionVariants"][0]["ModelName"] == "bankchurn-prod-model"

    assert sagemaker_deploy.delete(client, "bankchurn-prod") == ["endpoint", "endpoint config", "model"]
    assert client.list_endpoints()["Endpoints"] == []
    assert client.list_models()["Models"] == []
    assert sagemaker_deploy.delete(client, "bankchurn-prod") == []  # idempotent


def test_cli_deploy_and_delete(client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--region", "us-east-1"]
    deploy = [
        "deploy",
        "taxi",
        "--model-data",
        "s3://m/model.tar.gz",
        "--image-uri",
        IMAGE,
        "--role-arn",
        ROLE,
    ]
    assert sagemaker_deploy.main([*common, *deploy]) == 0
    assert "taxi: InService" in capsys.readouterr().out
    assert sagemaker_deploy.main([*common, "delete", "taxi"]) == 0
    assert "deleted endpoint, endpoint config, model" in capsys.readouterr().out
