"""GetMetricData with many queries answers exactly as moto does for each query alone."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from local_cloud import patches


def _query(qid: str, namespace: str, name: str, dims: dict[str, str], stat: str = "Minimum") -> dict:
    return {"Id": qid, "MetricStat": {"Metric": {
        "Namespace": namespace, "MetricName": name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]},
        "Period": 10, "Stat": stat}}


def _answers(cloudwatch, queries: list[dict], start: datetime, end: datetime) -> dict:
    out = cloudwatch.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end,
                                     ScanBy="TimestampAscending")["MetricDataResults"]
    return {r["Id"]: list(zip(r["Timestamps"], r["Values"], strict=True)) for r in out}


def test_many_queries_in_one_request_answer_as_each_query_alone(aws):
    patches.apply_patches()
    cloudwatch = aws.client("cloudwatch")
    now = int(time.time())
    t0 = datetime.fromtimestamp(now - now % 10 - 120, UTC)
    series = {("a", "primary"): [1, 0, 1], ("a", "backup"): [1, 1, 1], ("b", "primary"): [0, 0, 1]}
    for (route, upstream), values in series.items():
        for i, value in enumerate(values):
            cloudwatch.put_metric_data(Namespace="Turnout", MetricData=[{
                "MetricName": "UpstreamHealthy", "Value": value, "StorageResolution": 1,
                "Timestamp": t0 + timedelta(seconds=10 * i + 1),
                "Dimensions": [{"Name": "Route", "Value": route},
                               {"Name": "Upstream", "Value": upstream}]}])
    cloudwatch.put_metric_data(Namespace="Other", MetricData=[{
        "MetricName": "UpstreamHealthy", "Value": 5, "Timestamp": t0 + timedelta(seconds=3)}])
    queries = [_query(f"q{i}", "Turnout", "UpstreamHealthy", {"Route": r, "Upstream": u})
               for i, (r, u) in enumerate(series)]
    queries += [_query("nodims", "Other", "UpstreamHealthy", {}, "Maximum"),
                _query("absent", "Turnout", "UpstreamHealthy", {"Route": "zzz"})]
    start, end = t0, t0 + timedelta(seconds=60)

    together = _answers(cloudwatch, queries, start, end)
    alone = {q["Id"]: _answers(cloudwatch, [q], start, end)[q["Id"]] for q in queries}

    assert together == alone
    assert [v for _, v in together["q0"]] == [1.0, 0.0, 1.0]
    assert [v for _, v in together["nodims"]] == [5.0]
    assert together["absent"] == []

    # a datapoint written after the first request is seen by the next one
    cloudwatch.put_metric_data(Namespace="Turnout", MetricData=[{
        "MetricName": "UpstreamHealthy", "Value": 0, "StorageResolution": 1,
        "Timestamp": t0 + timedelta(seconds=31),
        "Dimensions": [{"Name": "Route", "Value": "a"}, {"Name": "Upstream", "Value": "backup"}]}])
    assert [v for _, v in _answers(cloudwatch, queries, start, end)["q1"]] == [1.0, 1.0, 1.0, 0.0]
