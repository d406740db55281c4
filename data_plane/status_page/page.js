"use strict";
// The status page: polls the status view and draws it. Every value from the view reaches
// the document as a text node or an attribute value, never as markup.
(function () {
  const API = "/__turnout/api/status";
  const POLL_MS = 1000;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const PHASE_CLASS = { READY: "ok", PENDING: "warn", REJECTED: "bad", FAILED: "bad" };
  const MARKER_CLASS = { failover: "m-failover", failback: "m-failback", manual: "m-manual",
                         "all-down": "m-all-down" };
  const SEGMENT_COLOURS = ["#2563eb", "#7c3aed", "#0d9488", "#c2410c", "#be185d", "#4d7c0f"];
  let lastOk = 0;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, String(value));
    }
  }

  function append(node, children) {
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  function replace(node, ...children) {
    node.replaceChildren();
    append(node, children);
  }

  function ms(iso) {
    const t = Date.parse(iso || "");
    return Number.isNaN(t) ? null : t;
  }

  function clock(iso) {
    const t = ms(iso);
    return t === null ? "-" : new Date(t).toLocaleTimeString("en-GB", { hour12: false });
  }

  function ago(iso, nowMs) {
    const t = ms(iso);
    if (t === null) return "never";
    const s = Math.max(0, Math.round((nowMs - t) / 1000));
    if (s < 90) return s + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 172800) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }

  function summary(view) {
    const phases = view.summary.phases || {};
    const health = view.summary.health || {};
    const ready = phases.READY || 0;
    const notReady = view.summary.routes - ready;
    const pills = [el("span", { class: "pill" }, view.summary.routes + " routes"),
                   el("span", { class: "pill ok" }, ready + " ready")];
    if (notReady) pills.push(el("span", { class: "pill warn" }, notReady + " not ready"));
    pills.push(el("span", { class: "pill ok" }, (health.healthy || 0) + " healthy upstreams"));
    if (health.unhealthy) pills.push(el("span", { class: "pill bad" }, health.unhealthy + " unhealthy"));
    if (health.unknown) pills.push(el("span", { class: "pill" }, health.unknown + " unknown"));
    return pills;
  }

  function upstreamChip(route, u, nowMs) {
    const meta = ["p" + (u.priority === null || u.priority === undefined ? "?" : u.priority)];
    if (u.alarm) meta.push("alarm " + u.alarm);
    meta.push(u.last_probe_time ? "probed " + ago(u.last_probe_time, nowMs) : "not probed yet");
    const tip = [u.url || "", u.last_change_time ? u.health + " since " + u.last_change_time : "",
                 u.consecutive_failures ? u.consecutive_failures + " failed probes in a row" : "",
                 u.consecutive_successes ? u.consecutive_successes + " good probes in a row" : ""];
    return el("span", { class: "upstream", "data-upstream": u.name, "data-health": u.health,
                        "data-active": u.active ? "true" : "false",
                        title: tip.filter(Boolean).join("\n") },
      el("span", { class: "dot " + (u.health === "healthy" ? "healthy" : u.health === "unhealthy" ? "unhealthy" : "") }),
      el("span", { class: "name" }, u.name),
      el("span", { class: "word" }, u.health),
      el("span", { class: "meta" }, meta.join(" \u00b7 ")));
  }

  function routeRow(r, nowMs) {
    const phaseCell = [el("span", { class: "badge " + (PHASE_CLASS[r.phase] || "") }, r.phase)];
    if (r.phase !== "READY" && r.reason) phaseCell.push(el("div", { class: "reason" }, r.reason));
    if (r.phase !== "READY" && r.message) phaseCell.push(el("div", { class: "small" }, r.message));
    const active = [el("div", { class: "active-name" }, r.active_upstream || "-")];
    if (r.active_url) active.push(el("div", { class: "small mono" }, r.active_url));
    if (r.switch_in_progress) active.push(el("div", { class: "flag info" }, "switching now"));
    if (r.all_unhealthy_since) {
      active.push(el("div", { class: "flag bad" }, "all upstreams down since " + clock(r.all_unhealthy_since)));
    }
    if (r.manual_choice && r.manual_choice === r.active_upstream) {
      active.push(el("div", { class: "flag info" }, "chosen by hand"));
    }
    const last = r.last_failover;
    const lastCell = last
      ? [el("div", {}, last.from_upstream + " \u2192 " + last.to_upstream),
         el("div", { class: "small" }, last.kind + ", " + ago(last.time, nowMs)),
         el("div", { class: "small clamp", title: last.why }, last.why)]
      : [el("span", { class: "small" }, "none")];
    return el("tr", { class: "route", "data-route-id": r.route_id, "data-phase": r.phase,
                      "data-active-upstream": r.active_upstream || "",
                      "data-all-down": r.all_unhealthy_since ? "true" : "false" },
      el("td", {}, el("div", { class: "route-id" }, r.route_id),
         el("div", { class: "small mono" }, [r.path || "", (r.methods || []).join(",")].filter(Boolean).join("  "))),
      el("td", {}, phaseCell),
      el("td", {}, r.mode || "-"),
      el("td", {}, active),
      el("td", {}, r.upstreams.length ? r.upstreams.map((u) => upstreamChip(r, u, nowMs)) : el("span", { class: "small" }, "none")),
      el("td", {}, lastCell));
  }

  function niceStep(spanMs, width) {
    const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
                   21600, 43200, 86400].map((s) => s * 1000);
    const wanted = spanMs / Math.max(2, Math.floor(width / 110));
    return steps.find((s) => s >= wanted) || steps[steps.length - 1];
  }

  function segments(route, events, startMs, endMs) {
    const switches = events.filter((e) => e.kind !== "all-down");
    if (!switches.length) return [{ from: startMs, to: endMs, name: route ? route.active_upstream : null }];
    const out = [{ from: startMs, to: ms(switches[0].time), name: switches[0].from_upstream }];
    switches.forEach((e, i) => {
      const next = i + 1 < switches.length ? ms(switches[i + 1].time) : endMs;
      out.push({ from: ms(e.time), to: next, name: e.to_upstream });
    });
    return out;
  }

  function chart(view, width) {
    const routes = view.routes;
    const events = view.timeline.events;
    const startMs = ms(view.timeline.start);
    const endMs = ms(view.timeline.end);
    const ids = routes.map((r) => r.route_id);
    for (const e of events) if (!ids.includes(e.route_id)) ids.push(e.route_id);
    const left = 170, right = 64, top = 28, lane = 46, barH = 20;
    const plot = Math.max(100, width - left - right);
    const height = top + Math.max(1, ids.length) * lane + 8;
    const span = Math.max(1, endMs - startMs);
    const x = (t) => left + ((t - startMs) / span) * plot;
    const root = svg("svg", { width: width, height: height, viewBox: "0 0 " + width + " " + height,
                              role: "img", "aria-label": "failover timeline" });
    const step = niceStep(span, plot);
    for (let t = Math.ceil(startMs / step) * step; t <= endMs; t += step) {
      root.appendChild(svg("line", { class: "grid", x1: x(t), x2: x(t), y1: top - 4, y2: height - 8 }));
      if (x(endMs) - x(t) > 48) {
        root.appendChild(svg("text", { class: "tick", x: x(t), y: 16, "text-anchor": "middle" },
                             clock(new Date(t).toISOString())));
      }
    }
    root.appendChild(svg("line", { class: "now", x1: x(endMs), x2: x(endMs), y1: top - 4, y2: height - 8 }));
    root.appendChild(svg("text", { class: "now-label", x: x(endMs) + 4, y: 16 }, "now"));
    if (!ids.length) {
      root.appendChild(svg("text", { class: "tick", x: left, y: top + 24 }, "no routes"));
      return root;
    }
    ids.forEach((id, i) => {
      const route = routes.find((r) => r.route_id === id);
      const mine = events.filter((e) => e.route_id === id);
      const y = top + i * lane;
      const colours = {};
      (route ? route.upstreams : []).forEach((u, k) => { colours[u.name] = SEGMENT_COLOURS[k % SEGMENT_COLOURS.length]; });
      const lane_ = svg("g", { class: "lane", "data-route-id": id });
      lane_.appendChild(svg("rect", { class: "lane-bg", x: left, y: y + 4, width: plot, height: lane - 8, rx: 4 }));
      lane_.appendChild(svg("text", { class: "lane-label", x: left - 12, y: y + lane / 2 + 4, "text-anchor": "end" },
                            id.length > 20 ? id.slice(0, 19) + "\u2026" : id));
      for (const seg of segments(route, mine, startMs, endMs)) {
        if (!seg.name || seg.to <= seg.from) continue;
        const x1 = x(seg.from), x2 = x(seg.to);
        const fill = colours[seg.name] || "#64748b";
        const g = svg("g", { class: "segment", "data-upstream": seg.name },
                      svg("title", {}, seg.name + " serving from " + clock(new Date(seg.from).toISOString())));
        g.appendChild(svg("rect", { x: x1, y: y + (lane - barH) / 2, width: Math.max(1, x2 - x1), height: barH,
                                    rx: 3, fill: fill, "fill-opacity": 0.85 }));
        const inset = seg.from > startMs ? 14 : 6;
        if (x2 - x1 > seg.name.length * 7 + inset + 6) {
          g.appendChild(svg("text", { class: "seg-label", x: x1 + inset, y: y + lane / 2 + 4 }, seg.name));
        }
        lane_.appendChild(g);
      }
      let labelEnd = -Infinity;
      for (const e of mine) {
        const cx = x(ms(e.time));
        const cy = y + lane / 2;
        const tip = [clock(e.time) + "  " + e.kind + ": " + e.from_upstream + " \u2192 " + e.to_upstream,
                     e.why, e.who ? "by " + e.who : ""].filter(Boolean).join("\n");
        const shape = e.kind === "all-down"
          ? svg("rect", { class: MARKER_CLASS[e.kind], x: cx - 7, y: cy - 7, width: 14, height: 14 })
          : svg("circle", { class: MARKER_CLASS[e.kind] || "m-manual", cx: cx, cy: cy, r: 8 });
        const marker = svg("g", { class: "marker", "data-route-id": id, "data-kind": e.kind, "data-time": e.time },
                           svg("title", {}, tip), shape);
        const label = e.kind === "all-down" ? "all down" : "\u2192 " + e.to_upstream;
        if (cx + 12 > labelEnd && cx + 12 + label.length * 7 < left + plot + right) {
          marker.appendChild(svg("text", { class: "marker-label", x: cx + 12, y: y + 11 }, label));
          labelEnd = cx + 12 + label.length * 7 + 8;
        }
        lane_.appendChild(marker);
      }
      root.appendChild(lane_);
    });
    return root;
  }

  function render(view) {
    const nowMs = ms(view.generated_at) || Date.now();
    replace(document.getElementById("summary"), summary(view));
    const rows = document.getElementById("route-rows");
    replace(rows, view.routes.map((r) => routeRow(r, nowMs)));
    document.getElementById("empty").hidden = view.routes.length > 0;
    const banner = document.getElementById("banner");
    banner.className = "banner";
    banner.hidden = !view.problems.length;
    replace(banner, view.problems.join(" \u00b7 "));
    const box = document.getElementById("chart");
    replace(box, chart(view, Math.max(480, box.clientWidth || 1200)));
    const shown = view.timeline.events.length;
    replace(document.getElementById("window"), clock(view.timeline.start) + " \u2013 " +
            clock(view.timeline.end) + " \u00b7 " + shown + (shown === 1 ? " event" : " events"));
    const unhealthy = (view.summary.health || {}).unhealthy || 0;
    document.title = (unhealthy ? "(" + unhealthy + " unhealthy) " : "") + "turnout status";
    document.body.setAttribute("data-generated-at", view.generated_at);
  }

  function connection(state, text) {
    const dot = document.getElementById("conn");
    dot.setAttribute("data-state", state);
    dot.style.animationDelay = -(Date.now() % 2000) + "ms";
    replace(document.getElementById("updated"), text);
  }

  async function poll() {
    try {
      const response = await fetch(API, { cache: "no-store", headers: { Accept: "application/json" } });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.error || "HTTP " + response.status);
      render(body);
      lastOk = Date.now();
      connection("live", "live \u00b7 updated " + clock(body.generated_at));
      for (const dot of document.querySelectorAll(".dot.healthy")) {
        dot.style.animationDelay = -(Date.now() % 2000) + "ms";
      }
    } catch (error) {
      connection("error", lastOk ? "disconnected \u00b7 last update " + clock(new Date(lastOk).toISOString())
                                 : "cannot read the status");
      const banner = document.getElementById("banner");
      banner.className = "banner error";
      banner.hidden = false;
      replace(banner, "Cannot read the status: " + error.message + " (retrying every second)");
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  poll();
})();
