"""The ChicagoTaxi service over HTTP (servekit's app factory, a tiny in-memory model)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chicagotaxi.schema import EXAMPLE, EXAMPLE_UNIX, TaxiTrip

RANGES = {"<10", "10-20", "20-40", "40-80", ">=80"}


def post(client: TestClient, body: Any, explain: bool = False) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        "/predict",
        params={"explain": str(explain).lower()},
        content=content,
        headers={"content-type": "application/json"},
    )


def test_predict_and_explain_in_usd(client: TestClient) -> None:
    response = post(client, EXAMPLE, explain=True)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {"name": "chicagotaxi", "version": "test"}
    assert body["currency"] == "USD"
    assert body["fare_range"] in RANGES
    assert 3.0 < body["fare"] < 40.0
    explanation = body["explanation"]
    assert explanation["scale"] == "USD"
    assert set(explanation["contributions"]) == set(EXAMPLE)
    total = explanation["base_value"] + sum(explanation["contributions"].values())
    assert total == pytest.approx(body["fare"], rel=1e-6)
    assert explanation["output_value"] == pytest.approx(body["fare"], rel=1e-6)


def test_iso_and_unix_requests_get_the_same_fare(client: TestClient) -> None:
    iso = post(client, EXAMPLE).json()
    unix = post(client, EXAMPLE_UNIX).json()
    assert iso["fare"] == unix["fare"]


def test_optional_fields_may_be_left_out_or_null(client: TestClient) -> None:
    minimal = {k: EXAMPLE[k] for k in ("trip_start_timestamp", "trip_miles", "trip_seconds", "payment_type")}
    assert post(client, minimal).status_code == 200
    nulls = {**EXAMPLE, "pickup_latitude": None, "pickup_longitude": None, "company": None}
    assert post(client, nulls).status_code == 200


def test_unseen_payment_type_and_company_are_accepted(client: TestClient) -> None:
    response = post(
        client, {**EXAMPLE, "payment_type": "Mobile", "company": "Brand New Cab Co"}, explain=True
    )
    assert response.status_code == 200, response.text
    same = post(client, {**EXAMPLE, "payment_type": "other", "company": "Another New Cab"})
    assert response.json()["fare"] == same.json()["fare"]


def test_batch_with_explanations_keeps_order(client: TestClient) -> None:
    rows = [{**EXAMPLE, "trip_miles": miles, "trip_seconds": 200 * miles} for miles in (0.5, 2.0, 8.0, 20.0)]
    single = [post(client, row).json()["fare"] for row in rows]
    response = client.post("/predict/batch?explain=true", json={"instances": rows})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert [p["fare"] for p in predictions] == pytest.approx(single)
    assert single == sorted(single)  # longer trips cost more
    assert all(p["explanation"]["scale"] == "USD" for p in predictions)


def test_outcomes_and_attributions_are_counted(client: TestClient) -> None:
    post(client, EXAMPLE, explain=True)
    metrics = client.get("/metrics").text
    assert 'chicagotaxi_predictions_total{outcome="' in metrics
    assert 'chicagotaxi_attribution_abs_sum_total{feature="trip_start_timestamp"}' in metrics


def test_openapi_has_request_examples(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    text = json.dumps(schema)
    assert "2015-03-01T10:00:00" in text
    assert "1425204000" in text


def test_model_metadata_reports_the_scale_and_baselines(client: TestClient) -> None:
    described = client.get("/model").json()
    assert described["explanation_scale"] == "USD"
    assert set(described["baselines"]["outcome_shares"]) <= RANGES
    assert set(described["training_metrics"]) >= {"mae", "rmse", "r2"}


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"trip_miles": 0}, "trip_miles", "greater than 0"),
        ({"trip_miles": -1.5}, "trip_miles", "greater than 0"),
        ({"trip_miles": 100.5}, "trip_miles", "less than or equal to 100"),
        ({"trip_miles": "2.5"}, "trip_miles", "valid number"),
        ({"trip_seconds": 0}, "trip_seconds", "greater than 0"),
        ({"trip_seconds": 30000}, "trip_seconds", "less than or equal to 21600"),
        ({"pickup_latitude": 45.0}, "pickup_latitude", "less than or equal to 42.03"),
        ({"dropoff_latitude": 41.0}, "dropoff_latitude", "greater than or equal to 41.64"),
        ({"pickup_longitude": -80.0}, "pickup_longitude", "less than or equal to -87.52"),
        ({"pickup_community_area": 0}, "pickup_community_area", "greater than or equal to 1"),
        ({"dropoff_community_area": 78}, "dropoff_community_area", "less than or equal to 77"),
        ({"dropoff_community_area": 8.5}, "dropoff_community_area", "valid integer"),
        ({"company": "x" * 101}, "company", "at most 100"),
        ({"payment_type": ""}, "payment_type", "the field is required: send 'Unknown'"),
        ({"payment_type": None}, "payment_type", "valid string"),
        ({"surge": 1.5}, "surge", "Extra inputs"),
        ({"trip_start_timestamp": "yesterday"}, "trip_start_timestamp", "neither Unix seconds nor ISO 8601"),
        ({"trip_start_timestamp": 1425204000000}, "trip_start_timestamp", "not milliseconds"),
        ({"trip_start_timestamp": 86400}, "trip_start_timestamp", "2000 and 2100"),
        ({"trip_start_timestamp": "9999-12-31T23:59:59-12:00"}, "trip_start_timestamp", "2000 and 2100"),
        ({"trip_start_timestamp": "0001-01-01T00:00:00+14:00"}, "trip_start_timestamp", "2000 and 2100"),
        ({"trip_start_timestamp": "2015-03-01T10:00:00" + " " * 40}, "trip_start_timestamp", "at most 40"),
        ({"trip_start_timestamp": True}, "trip_start_timestamp", "ISO 8601"),
        ({"trip_start_timestamp": None}, "trip_start_timestamp", "ISO 8601"),
        ({"trip_start_timestamp": [1425204000]}, "trip_start_timestamp", "ISO 8601"),
        # BigQuery's text for a TIMESTAMP: the reply says which export fixes it.
        (
            {"trip_start_timestamp": "2015-03-01 10:00:00 UTC"},
            "trip_start_timestamp",
            "export UNIX_SECONDS(trip_start_timestamp) if it holds Chicago wall-clock times",
        ),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    client: TestClient, change: dict[str, Any], field: str, problem: str
) -> None:
    response = post(client, {**EXAMPLE, **change})
    assert response.status_code == 422, response.text
    fields = response.json()["fields"]
    assert any(f["field"] == field and problem in f["problem"] for f in fields), fields


@pytest.mark.parametrize("field", ["trip_miles", "trip_seconds", "pickup_latitude", "trip_start_timestamp"])
@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_are_a_422_naming_the_field(client: TestClient, field: str, token: str) -> None:
    body = json.dumps({**EXAMPLE, field: 12345.678}).replace("12345.678", token).encode()
    response = post(client, body)
    assert response.status_code == 422, response.text
    assert any(f["field"] == field for f in response.json()["fields"]), response.json()


@pytest.mark.parametrize("field", ["trip_start_timestamp", "trip_miles", "trip_seconds", "payment_type"])
def test_required_fields(client: TestClient, field: str) -> None:
    body = {k: v for k, v in EXAMPLE.items() if k != field}
    response = post(client, body)
    assert response.status_code == 422
    assert response.json()["fields"] == [{"field": field, "problem": "Field required"}]


def test_a_trip_after_the_training_years_is_flagged_on_its_timestamp(client: TestClient) -> None:
    years = client.get("/model").json()["baselines"]["training_ranges"]["trip_start_year"]
    assert years["field"] == "trip_start_timestamp"
    later = int(years["max"]) + 8
    body = post(client, {**EXAMPLE, "trip_start_timestamp": f"{later}-03-01T10:00:00"}).json()
    # Fares rise over the years, but the trees price every later year as their last one.
    assert body["outside_training"] == [
        {
            "field": "trip_start_timestamp",
            "column": "trip_start_year",
            "value": later,
            "training_min": years["min"],
            "training_max": years["max"],
        }
    ]
    assert post(client, EXAMPLE).json()["outside_training"] == []
    series = 'chicagotaxi_inputs_outside_training_total{feature="trip_start_timestamp"} '
    (line,) = [x for x in client.get("/metrics").text.splitlines() if x.startswith(series)]
    assert float(line.removeprefix(series)) >= 1  # the session's client: other tests may add more


#: O'Hare to the Loop: about 15.5 miles in a straight line.
OHARE_TO_LOOP = {
    "pickup_latitude": 41.979071,
    "pickup_longitude": -87.90304,
    "pickup_community_area": 76,
    "dropoff_latitude": 41.880994,
    "dropoff_longitude": -87.632746,
    "dropoff_community_area": 32,
}


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        # Rule 12 of the cleaning: a duration in minutes sent as seconds.
        (
            {**OHARE_TO_LOOP, "trip_miles": 17.5, "trip_seconds": 30},
            "trip_seconds",
            "trip_miles 17.5 in trip_seconds 30 is 2,100 mph; the training data treats trips over 80 mph "
            "as errors: minutes sent as seconds? 30 minutes would be 35 mph",
        ),
        (
            {"trip_miles": 30, "trip_seconds": 600},
            "trip_seconds",
            "trip_miles 30 in trip_seconds 600 is 180 mph; the training data treats trips over 80 mph "
            "as errors: one of the two is wrong",
        ),
        # A duration too short for a float's hours: no division by zero, no 300-digit speed.
        (
            {"trip_miles": 2.5, "trip_seconds": 5e-324},
            "trip_seconds",
            "trip_miles 2.5 in trip_seconds 4.94066e-324 is over 1,000,000 mph",
        ),
        (
            {"trip_miles": 100, "trip_seconds": 1e-300},
            "trip_seconds",
            "trip_miles 100 in trip_seconds 1e-300 is over 1,000,000 mph",
        ),
        # Rule 13: fewer miles than the straight line.
        (
            {**OHARE_TO_LOOP, "trip_miles": 0.7, "trip_seconds": 1800},
            "trip_miles",
            "trip_miles 0.7 is shorter than the 15.5 miles in a straight line from pickup to dropoff; "
            "the training data treats miles more than 2 miles under it as under-recorded",
        ),
        # Rule 4: half a coordinate pair.
        (
            {"pickup_longitude": None},
            "pickup_longitude",
            "pickup_longitude is missing while pickup_latitude is given: send both or neither",
        ),
        (
            {"dropoff_latitude": None},
            "dropoff_latitude",
            "dropoff_latitude is missing while dropoff_longitude is given: send both or neither",
        ),
    ],
)
def test_a_trip_the_training_data_treats_as_an_error_is_a_422_saying_why(
    client: TestClient, change: dict[str, Any], field: str, problem: str
) -> None:
    response = post(client, {**EXAMPLE, **change})
    assert response.status_code == 422, response.text
    fields = response.json()["fields"]
    assert any(f["field"] == field and f["problem"].startswith(problem) for f in fields), fields


def test_a_plausible_airport_trip_and_a_trip_without_coordinates_are_answered(client: TestClient) -> None:
    assert (
        post(client, {**EXAMPLE, **OHARE_TO_LOOP, "trip_miles": 17.5, "trip_seconds": 1800}).status_code
        == 200
    )
    no_pickup = {**EXAMPLE, "pickup_latitude": None, "pickup_longitude": None}
    assert post(client, no_pickup).status_code == 200


def test_a_batch_names_each_inconsistent_trip_by_its_row(client: TestClient) -> None:
    rows = [
        EXAMPLE,
        {**EXAMPLE, "trip_miles": 17.5, "trip_seconds": 30},
        {**EXAMPLE, "pickup_latitude": None},
    ]
    response = client.post("/predict/batch", json={"instances": rows})
    assert response.status_code == 422, response.text
    assert [f["field"] for f in response.json()["fields"]] == [
        "instances[1].trip_seconds",
        "instances[2].pickup_latitude",
    ]


def test_a_trip_just_before_midnight_is_not_outside_training(client: TestClient) -> None:
    """The hour of day wraps: the training rows, on the quarter hour, stop at 23:45."""
    hours = client.get("/model").json()["baselines"]["training_ranges"]["trip_start_hour"]
    assert (hours["min"], hours["max"]) == (0.0, 24.0)
    for late in ("2015-03-01T23:46:00", "2015-03-01T23:59:59", "2015-03-01T00:00:00"):
        body = post(client, {**EXAMPLE, "trip_start_timestamp": late}).json()
        assert body["outside_training"] == [], late


def test_reasons_show_the_values_as_sent(client: TestClient) -> None:
    """An adverse-action style reason names what the caller sent, not the model's encoding of it."""
    sent = {**EXAMPLE, "trip_start_timestamp": "2015-03-01T16:00:00Z", "payment_type": "Mobile"}
    response = client.post("/predict", params={"reasons": 11}, json=sent)
    assert response.status_code == 200, response.text
    values = {reason["field"]: reason["value"] for reason in response.json()["reasons"]}
    assert values == {field: sent[field] for field in values}
    assert values["trip_start_timestamp"] == "2015-03-01T16:00:00Z"
    assert values["payment_type"] == "Mobile"


@pytest.mark.parametrize(
    ("sent", "problem"),
    [
        ("2015-02-29T10:00:00", "'2015-02-29T10:00:00' is not a real time: day is out of range for month"),
        (
            "2015-03-01T24:00:00",
            "'2015-03-01T24:00:00' has hour 24, which is not accepted: send 00:00 of the next day",
        ),
        ("2015-03-01T10:61:00", "'2015-03-01T10:61:00' is not a real time: minute must be in 0..59"),
        ("2015-060T10:00", "'2015-060T10:00' is an ordinal date (day of the year), which is not accepted"),
        (
            "02/29/2015 10:00:00 AM",
            "not a real time in the data portal's MM/DD/YYYY hh:mm:ss AM/PM form: day",
        ),
        ("1999-12-31T10:00:00", "'1999-12-31T10:00:00' is not between 2000 and 2100"),
    ],
)
def test_a_bad_timestamp_is_refused_with_its_own_problem(client: TestClient, sent: str, problem: str) -> None:
    response = post(client, {**EXAMPLE, "trip_start_timestamp": sent})
    assert response.status_code == 422, response.text
    [found] = response.json()["fields"]
    assert found["field"] == "trip_start_timestamp"
    assert problem in found["problem"]


def test_the_data_portals_own_timestamp_text_is_read_as_chicago_time(client: TestClient) -> None:
    """``03/01/2015 10:00:00 AM``: how the City of Chicago data portal exports the trips."""
    for portal, iso in (
        ("03/01/2015 10:00:00 AM", "2015-03-01T10:00:00"),
        ("03/01/2015 12:15:00 AM", "2015-03-01T00:15:00"),
        ("03/01/2015 12:15:00 PM", "2015-03-01T12:15:00"),
        ("03/01/2015 11:45:00 PM", "2015-03-01T23:45:00"),
    ):
        from_portal = post(client, {**EXAMPLE, "trip_start_timestamp": portal})
        assert from_portal.status_code == 200, from_portal.text
        assert (
            from_portal.json()["fare"]
            == post(client, {**EXAMPLE, "trip_start_timestamp": iso}).json()["fare"]
        )


@pytest.mark.parametrize("blank", ["", "   ", "null", "N/A", "none", " NaN "])
def test_a_blank_payment_type_is_refused_as_the_training_data_reads_it_as_none(
    client: TestClient, blank: str
) -> None:
    response = post(client, {**EXAMPLE, "payment_type": blank})
    assert response.status_code == 422, response.text
    [found] = response.json()["fields"]
    assert found["field"] == "payment_type"
    # "" too: it was refused by the field's length, in pydantic's words ("at least 1 character")
    assert found["problem"].endswith("the field is required: send 'Unknown' if it is not known")


def test_the_schema_still_states_that_a_payment_type_is_not_empty() -> None:
    # For generated clients, now that the validator, not min_length, refuses "".
    assert TaxiTrip.model_json_schema()["properties"]["payment_type"]["minLength"] == 1


def test_a_null_token_for_the_company_is_no_company(client: TestClient) -> None:
    """As training reads it: a company called "N/A" would count as a company sent."""
    for token in ("N/A", " null ", "  "):
        assert TaxiTrip.model_validate({**EXAMPLE, "company": token}).model_dump()["company"] is None
    none = post(client, {**EXAMPLE, "company": None}).json()["fare"]
    assert post(client, {**EXAMPLE, "company": "N/A"}).json()["fare"] == none
