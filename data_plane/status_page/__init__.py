"""The status page the local gateway serves at ``/__turnout/``.

``page.html``, ``page.css`` and ``page.js`` are assembled into one self-contained HTML page
(inline style and script, no external fetch) that polls ``/__turnout/api/status`` every second
and draws routes, upstream health and the failover timeline from it. :mod:`.server` answers
both paths; the view itself is :mod:`control_plane.status_view`.
"""
