"""The reliability and security suite's figures, from one run of its scenarios.

Runs the scenarios of ``tests/reliability/`` (the same code the slow tests run) and prints one
table:

- hostile input: the corpus written with the AWS CLI to ``turnout up`` while three routes
  serve; loopback spellings to a second ``turnout up`` without ``--allow-loopback-upstreams``;
- request smuggling: raw-socket attempts against the local gateway;
- secrets: the canary credential and API key used every way, then searched for everywhere;
- faults: the reconcile function dying mid-batch, the state table unavailable (to the
  reconciler, and to the failover workflow), a failover execution dying with the lock held;
  throttling is the slow functional test ``test_convergence.py`` (run here with pytest);
- load: ``--rps`` requests/s for ``--seconds`` across 50 routes while a primary is killed and
  restored (default 1,000/s for 60 s; the achieved rate is printed as measured).

    .venv/bin/python -m bench.reliability [--rps 1000] [--seconds 60] [--only load,faults,...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

SCENARIOS = ("hostile", "smuggling", "secrets", "faults", "load")
Row = tuple[str, str, str]


def _print_table(rows: list[Row]) -> None:
    widths = [max([len(("scenario", "figure")[i])] + [len(r[i]) for r in rows]) for i in range(2)]
    print()
    print(f"{'scenario'.ljust(widths[0])}  {'figure'.ljust(widths[1])}  value")
    print(f"{'-' * widths[0]}  {'-' * widths[1]}  -----")
    for scenario, figure, value in rows:
        print(f"{scenario.ljust(widths[0])}  {figure.ljust(widths[1])}  {value}")
    sys.stdout.flush()


def _say(message: str) -> None:
    print(f"bench.reliability: {message}", file=sys.stderr, flush=True)


# ---- scenarios on the shared turnout up ----------------------------------------------------


def suite_rows(only: set[str]) -> list[Row]:
    from tests.reliability import smuggling
    from tests.reliability.hostile import run_hostile
    from tests.reliability.hostile_corpus import corpus
    from tests.reliability.secrets_scan import exercise, scan
    from tests.reliability.suite import Suite, Traffic, put_route
    from tests.system.harness import Turnout

    rows: list[Row] = []
    suite = Suite()
    try:
        if "hostile" in only:
            _say("hostile input")
            items = [i for i in corpus() if not i.loopback]
            report = run_hostile(suite.turnout, items, traffic=Traffic(suite, suite.serving))
            strict = Turnout(allow_loopback_upstreams=False)
            try:
                loopback = run_hostile(strict, [i for i in corpus() if i.loopback])
            finally:
                strict.stop()
            written = len(report.writes.written) + len(loopback.writes.written)
            not_rejected = len(report.not_rejected()) + len(loopback.not_rejected())
            rows += [
                ("hostile input", "corpus items (categories)",
                 f"{len(items) + len(loopback.items)} ({len(set(i.category for i in corpus()))})"),
                ("hostile input", "written with the AWS CLI / refused by DynamoDB at write",
                 f"{written} / {len(report.writes.refused) + len(loopback.writes.refused)} ("
                 + ", ".join(i.label for i, _ in report.writes.refused) + ")"),
                ("hostile input", "REJECTED with a reason / not rejected",
                 f"{written - not_rejected} / {not_rejected}"),
                ("hostile input", "distinct reasons", str(len(set(report.reasons())
                                                             | set(loopback.reasons())))),
                ("hostile input", "records on the on-failure queue",
                 str(report.failure_queue_messages + loopback.failure_queue_messages)),
                ("hostile input", "serving-route requests during the writes / failed",
                 f"{len(report.traffic)} / {len(report.traffic_failures())}"),
                ("hostile input", "write time / time until every item had its status",
                 f"{report.write_seconds:.1f} s / {report.settle_seconds:.1f} s"),
            ]
        if "smuggling" in only or "secrets" in only:
            _say("request smuggling")
            upstream = suite.upstream("smuggle")
            put_route(suite.turnout, smuggling.route_item(upstream))
            suite.turnout.wait_for(lambda: suite.call("GET", "/smuggle/ready")[0] == 200)
            outcomes = smuggling.run_attempts(suite.turnout.gateway_port, upstream)
            for outcome in outcomes:
                suite.keep(outcome.received)
            attempts = [o for o in outcomes if not o.attempt.passes]
            statuses: dict[str, int] = {}
            for o in attempts:
                key = str(o.statuses[0]) if o.statuses else "no answer (held)"
                statuses[key] = statuses.get(key, 0) + 1
            rows += [
                ("smuggling", "attempts / as expected",
                 f"{len(attempts)} / {sum(o.as_expected for o in attempts)}"),
                ("smuggling", "first answers", ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))),
                ("smuggling", "attempts that reached the upstream",
                 str(sum(o.reached_upstream for o in attempts))),
                ("smuggling", "controls through (expected 1 + 2 requests)",
                 str(sum(o.reached_upstream for o in outcomes if o.attempt.passes))),
            ]
        if "secrets" in only:
            _say("secrets")
            done = exercise(suite)
            scanned = scan(suite)
            rows += [
                ("secrets", "proxied calls carrying the secret to the upstream",
                 f"{done['upstream_got_secret']} (client-set value passed on: "
                 f"{done['upstream_got_client_value']})"),
                ("secrets", "texts scanned",
                 ", ".join(f"{k} {v} ({scanned.bytes_by_source[k] // 1024} KiB)"
                           for k, v in scanned.texts_by_source.items())),
                ("secrets", "canary values found", str(len(scanned.hits))
                 + (f" {scanned.hits}" if scanned.hits else "")),
            ]
    finally:
        suite.stop()
    return rows


# ---- faults, on a local cloud in this process ----------------------------------------------


def _endpoint():
    from moto.server import ThreadedMotoServer

    from tests.conftest import AwsEndpoint, free_port

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(name, value)
    port = free_port()
    os.environ["MOTO_PORT"] = str(port)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, AwsEndpoint(url=f"http://127.0.0.1:{port}")


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's standard output (file descriptor 1: the functions of the local
    cloud run here and log there) to ``path`` meanwhile, so the table stays readable."""
    sys.stdout.flush()
    saved = os.dup(1)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def fault_rows() -> list[Row]:
    log = Path(tempfile.gettempdir()) / "turnout-bench-reliability-faults.log"
    _say(f"faults: the local cloud's function logs go to {log}")
    with _output_to(log):
        return _fault_rows()


def _fault_rows() -> list[Row]:
    from tests.reliability import faults

    server, aws = _endpoint()
    rows: list[Row] = []
    try:
        _say("faults: reconcile function dying mid-batch")
        aws.reset()
        crash = faults.run_crash(aws)
        rows += [
            ("faults", "reconcile crashes mid-batch (30 routes, 10 changed, 5 deleted)",
             f"{crash.crashes} crashes; converged in {crash.seconds:.1f} s; "
             f"{len(crash.wrong())} routes wrong; on-failure queue {crash.failure_queue_messages}; "
             f"resync writes {crash.resync_writes}"),
        ]
        _say("faults: state table unavailable to the reconciler")
        aws.reset()
        outage, after = faults.run_state_table_outage(aws)
        rows.append(("faults", "state table down 10 s for the reconciler (20 routes)",
                     f"{outage.refused_calls} calls refused; converged {after:.1f} s after it "
                     f"came back; {len(outage.wrong())} wrong; on-failure queue "
                     f"{outage.failure_queue_messages}; resync writes {outage.resync_writes}"))
        with tempfile.TemporaryDirectory() as tmp:
            _say("faults: state table unavailable to the failover workflow")
            aws.reset()
            during, later = faults.run_failover_outage(aws, Path(tmp) / "a")
            rows.append(("faults", "state table down 15 s for the failover workflow",
                         f"{during.notes['refused_calls']} calls refused; execution "
                         f"{faults.execution_statuses(during)}, events {during.events}, audit "
                         f"items {len(during.audit)}, lock left: "
                         f"{'lock_owner' in (during.record or {})}; next alarm: "
                         f"{faults.execution_statuses(later)[-1]}, switched to {later.variable}"))
            _say("faults: failover execution dying with the lock (waits for the lock to expire)")
            aws.reset()
            crashed, before, expired = faults.run_lock_expiry(aws, Path(tmp) / "b")
            rows.append(("faults", "failover execution stopped holding the lock",
                         f"lock {crashed.notes['lock_seconds']} s; alarm before expiry: "
                         f"{faults.execution_statuses(before)[-1]}, nothing switched "
                         f"({before.variable}); alarm after expiry: switched to "
                         f"{expired.variable} in {expired.notes['switch_seconds']:.1f} s, "
                         f"{len(expired.audit)} audit item, lock released: "
                         f"{'lock_owner' not in expired.record}"))
    finally:
        server.stop()
    _say("faults: 30 % of API Gateway calls throttled (tests/functional/test_convergence.py)")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "slow", "-p", "no:cacheprovider",
         "tests/functional/test_convergence.py::"
         "test_a_batch_of_100_routes_converges_with_30_percent_of_api_gateway_calls_throttled"],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    verdict = "passed" if done.returncode == 0 else "FAILED"
    rows.append(("faults", "100 routes, 30 % of API Gateway calls answered 429",
                 f"{verdict} in {time.monotonic() - started:.1f} s (every route READY)"))
    return rows


# ---- load ----------------------------------------------------------------------------------


def load_rows(rps: float, seconds: float) -> list[Row]:
    from tests.reliability.load import LoadPlan, run_load, summary_lines

    _say(f"load: {rps:.0f} requests/s for {seconds:.0f} s")
    report = run_load(LoadPlan(rate_per_second=rps, duration_seconds=seconds, capacity_seconds=8),
                      progress=_say)
    return [("load", f"line {i + 1}", line) for i, line in enumerate(summary_lines(report))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rps", type=float, default=float(os.environ.get("TURNOUT_LOAD_RPS", 1000)),
                        help="load: offered requests per second (default 1000)")
    parser.add_argument("--seconds", type=float,
                        default=float(os.environ.get("TURNOUT_LOAD_SECONDS", 60)),
                        help="load: duration (default 60)")
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help=f"comma-separated scenarios out of {','.join(SCENARIOS)}")
    args = parser.parse_args()
    only = set(args.only.split(","))
    started = time.monotonic()
    rows: list[Row] = []
    steps: list[Callable[[], list[Row]]] = []
    if only & {"hostile", "smuggling", "secrets"}:
        steps.append(lambda: suite_rows(only))
    if "faults" in only:
        steps.append(fault_rows)
    if "load" in only:
        steps.append(lambda: load_rows(args.rps, args.seconds))
    for step in steps:
        rows += step()
    rows.append(("all", "wall time", f"{time.monotonic() - started:.0f} s"))
    _print_table(rows)


if __name__ == "__main__":
    main()
