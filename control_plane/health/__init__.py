"""Active health checking: turnout's prober (DESIGN §4C).

    fall_rise    HAProxy-style fall/rise: consecutive results -> healthy / unhealthy (pure)
    jobs         what to probe, derived from the routes (pure)
    schedule     when each probe is due and whether it still fits the invocation (pure)
    http_probe   one HTTP probe under the egress policy (sockets)
    reporter     health items, events and metrics, written from one background thread
    prober       the loop: probes every upstream concurrently for one invocation
    metrics      the metric sinks: embedded metric format or the CloudWatch API

The prober's public signals (health item, metric, alarm names, the ``Upstream Health
Changed`` event) are defined in :mod:`control_plane.model.health` and
:mod:`control_plane.model.health_signals`.
"""
