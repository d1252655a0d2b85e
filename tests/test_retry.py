"""Which failed requests specc sends again, and how long it waits.

Only what can succeed when repeated is retried: throttling (429), an unavailable or
timed-out server (503, 504), dropped connections; another 5xx only when the server asks
for a retry (Retry-After, or ``details.retryAfterSeconds``). A malformed Retry-After
(``-1``, ``soon``) is ignored rather than trusted.
"""

from __future__ import annotations

import email.utils
from pathlib import Path

import pytest

from specc.pipeline import render_path
from specc.sync import Cluster, ClusterOptions, SyncOptions, sync
from specc.sync.cluster import ApiError, parse_retry_after, retry_wait
from specc.testing import ApiServer
from specc.testing.pytest_plugin import KubeTarget
from tests.reliability import Sleeps, connect


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        ("120", 120.0),
        ("-1", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        ("٣", None),  # a Unicode digit is not a delay-seconds
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: at once
    ],
)
def test_retry_after_accepts_whole_seconds_or_an_http_date(
    value: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(value) == seconds


def test_retry_after_as_a_future_http_date_is_the_time_until_then() -> None:
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(date, now=1_000_000) == 30.0


@pytest.mark.parametrize(
    ("status", "headers", "details", "expected"),
    [
        (429, {}, {}, (True, None)),
        (429, {"Retry-After": "3"}, {}, (True, 3.0)),
        (429, {"Retry-After": "-1"}, {}, (True, None)),
        (503, {}, {}, (True, None)),
        (504, {}, {}, (True, None)),
        (500, {}, {}, (False, None)),
        (500, {"Retry-After": "2"}, {}, (True, 2.0)),
        (500, {}, {"retryAfterSeconds": 1}, (True, 1.0)),  # ServerTimeout
        (500, {"Retry-After": "-1"}, {}, (False, None)),
        (502, {}, {}, (False, None)),
        (409, {"Retry-After": "1"}, {}, (False, 1.0)),
        (422, {}, {}, (False, None)),
    ],
)
def test_retry_wait_retries_only_what_can_succeed_again(
    status: int,
    headers: dict[str, str],
    details: dict[str, int],
    expected: tuple[bool, float | None],
) -> None:
    body = {"details": details} if details else {}
    assert retry_wait(status, headers, body) == expected


def _get(cluster: Cluster) -> None:
    cluster.request("get", "GET", "/api/v1/namespaces/default")


@pytest.mark.parametrize("code", [500, 502])
def test_a_5xx_without_a_retry_hint_fails_at_once(apiserver: ApiServer, code: int) -> None:
    apiserver.faults.add("/api/v1/namespaces/default", status=code)
    sleeps = Sleeps()
    cluster = connect(apiserver, sleeps=sleeps)
    with pytest.raises(ApiError) as failed:
        _get(cluster)
    assert failed.value.status == code
    assert (cluster.stats.requests["get"], cluster.stats.retries, sleeps.calls) == (1, 0, 0)


def test_a_500_with_retry_after_is_retried_after_the_asked_wait(apiserver: ApiServer) -> None:
    apiserver.faults.add("/api/v1/namespaces/default", status=500, retry_after=2, times=2)
    sleeps = Sleeps()
    cluster = connect(apiserver, sleeps=sleeps)
    _get(cluster)
    assert (cluster.stats.requests["get"], sleeps.calls, sleeps.total) == (3, 2, 4.0)


@pytest.mark.parametrize("header", ["-1", "soon", "1.5", "99999999999999999999"])
def test_a_429_with_a_malformed_or_huge_retry_after_backs_off_instead(
    apiserver: ApiServer, header: str
) -> None:
    apiserver.faults.add("/api/v1/namespaces/default", status=429, retry_after=header, times=3)
    sleeps = Sleeps()
    cluster = connect(apiserver, sleeps=sleeps)
    _get(cluster)
    assert cluster.stats.retries == 3
    # Backoff (0.2 s doubling, jittered) or the cap (10 s), never a negative sleep.
    assert 0 < sleeps.total <= 30


def test_sync_survives_retry_after_minus_one_with_real_sleeps(
    apiserver: ApiServer, fleet: Path
) -> None:
    """Issue 18: a 429 with ``Retry-After: -1`` crashed sync (``time.sleep(-1)``)."""
    (fleet / "apps/storefront/monitoring.yaml").unlink()
    _, (render,) = render_path(fleet, ["dev"])
    apiserver.faults.add(
        "/api/v1/namespaces/*", method="PATCH", status=429, retry_after=-1, times=2
    )
    options = ClusterOptions(backoff=0.001, max_backoff=0.01)
    cluster = Cluster(apiserver.api_client(), options)  # time.sleep itself
    result = sync(cluster, render, SyncOptions(commit="c1"))
    assert result.ok, result.to_dict()
    assert cluster.stats.retries == 2


def test_a_deterministic_500_is_sent_once(kube: KubeTarget) -> None:
    """An unknown field in an apply patch is a 500 on kube-apiserver (typed patch failure)."""
    cluster = Cluster.connect(ClusterOptions(kubeconfig=str(kube.kubeconfig_path)))
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "strict", "namespace": kube.namespace},
        "bogus": 1,
    }
    with pytest.raises(ApiError) as failed:
        cluster.apply(body, force=True)
    assert failed.value.status == 500
    assert "field not declared in schema" in str(failed.value)
    assert (cluster.stats.requests["apply"], cluster.stats.retries) == (1, 0)
