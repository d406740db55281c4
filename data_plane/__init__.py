"""turnout's data plane: the local gateway and the proxy handler.

Local gateway modules, from pure to wired:
``routing`` (resource matching), ``headers`` (header hygiene), ``integration_uri``
(where a request goes), ``gateway_responses`` (the gateway's own answers),
``gateway_config`` (stage snapshots read from AWS), ``transport`` (the only
upstream sockets), ``http_proxy`` (the HTTP_PROXY integration), ``access_log``,
``server_thread`` and ``local_gateway`` (the server).
"""
