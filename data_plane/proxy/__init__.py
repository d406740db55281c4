"""The data-plane function for ``mode: proxy`` routes (``data_plane.proxy.handler.handler``).

API Gateway invokes it with a REST proxy event (payload version 1.0) for every request of a
proxy route. It finds the route whose ``path`` is the event's ``resource``, adds the route's
credential, forwards the request to the active upstream and, when that fails in a way that is
safe to repeat, to the next upstream by priority, all within the route's ``timeout_ms``.

Modules, from pure to wired:

``proxy_event``      the API Gateway event -> :class:`~data_plane.proxy.proxy_event.ProxyRequest`
``request_headers``  header hygiene towards the upstream (hop-by-hop, ``x-api-key``, forwarding)
``upstream_order``   which upstreams a request tries, in which order
``retry_policy``     whether a failed try may be repeated on the next upstream
``outlier``          passive outlier detection (consecutive failures -> ejection)
``latency``          recent first-byte latencies per upstream (the hedging delay)
``retry_budget``     per route, how many hedges and retries may start (extra load bounded)
``proxy_result``     the upstream's answer, or an error, as a Lambda proxy result
``http_client``      the only module that opens sockets (pooled, egress-checked)
``credentials``      ``upstream_auth`` header values from Secrets Manager, cached
``route_directory``  routes and their active upstream from DynamoDB, cached
``forwarder``        the tries of one request, hedged for idempotent ones
``handler``          the Lambda entry point

Failures of one try, as :mod:`data_plane.proxy.http_client` raises them::

    UpstreamError
    ├── UpstreamConnectError   the request never left: DNS, refused, unreachable, connect
    │   │                      timeout, TLS handshake; safe to repeat for any method
    │   └── EgressRefusedError every address of the host is one turnout may not call
    ├── UpstreamResetError     the connection broke after the request went out, or the
    │                          answer was unusable; the upstream may have acted on it
    ├── UpstreamTimeout        no complete answer within the try's time budget
    ├── UpstreamCancelled      the caller gave the try up (another upstream answered first)
    └── UpstreamResponseTooLarge  the answer cannot fit a Lambda proxy result

Answers to the client carry no internals: 502 ``{"message":"Bad Gateway"}`` when no upstream
answered, 504 ``{"message":"Gateway Timeout"}`` when the last one did not answer in time, 502
``{"message":"Response payload too large"}`` when the answer exceeds Lambda's 6 MB payload.
"""
