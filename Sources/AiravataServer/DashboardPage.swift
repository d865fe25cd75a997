/// The operations page, whole: markup, styles and script in one file, embedded in the binary
/// so that every node serves it with no CDN and no build step. It holds no data: it asks for
/// an admin token (kept in this tab's sessionStorage only), then polls `/api/v1/cluster`
/// every second and keeps the last minutes of figures itself for the charts.
enum DashboardPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Airavata Gateway · cluster</title>
        <style>
        :root { --bg:#0f1419; --panel:#172029; --line:#2a3642; --text:#d8e0e8; --dim:#8a99a8;
                --ok:#3fb950; --warn:#d29922; --bad:#f85149; --accent:#58a6ff; }
        * { box-sizing: border-box; }
        body { margin:0; font:14px/1.4 system-ui, sans-serif; background:var(--bg); color:var(--text); }
        header { display:flex; align-items:center; gap:1rem; padding:.6rem 1rem; border-bottom:1px solid var(--line); }
        header h1 { font-size:1.05rem; margin:0; font-weight:600; }
        header .grow { flex:1; }
        #message { color:var(--dim); }
        #message.error { color:var(--bad); }
        main { padding:1rem; display:grid; gap:1rem; }
        .cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(150px, 1fr)); gap:.6rem; }
        .card { background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:.5rem .7rem; }
        .card .label { color:var(--dim); font-size:.75rem; text-transform:uppercase; letter-spacing:.04em; }
        .card .value { font-size:1.35rem; font-variant-numeric:tabular-nums; }
        .card .detail { color:var(--dim); font-size:.78rem; }
        table { border-collapse:collapse; width:100%; background:var(--panel); border:1px solid var(--line); }
        th, td { text-align:left; padding:.35rem .6rem; border-bottom:1px solid var(--line); white-space:nowrap; }
        td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
        th { color:var(--dim); font-weight:500; font-size:.78rem; }
        .badge { padding:.05rem .45rem; border-radius:999px; font-size:.78rem; border:1px solid currentColor; }
        .s-ready, .r-up { color:var(--ok); } .s-draining, .s-starting { color:var(--warn); }
        .s-unknown, .r-down, .r-unknown { color:var(--bad); } .r-none { color:var(--dim); }
        .charts { display:grid; grid-template-columns:repeat(auto-fill, minmax(340px, 1fr)); gap:.8rem; }
        .chart { background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:.5rem .7rem; }
        .chart h2 { font-size:.8rem; color:var(--dim); margin:0 0 .3rem; font-weight:500; }
        .chart svg { width:100%; height:120px; display:block; }
        .legend { font-size:.75rem; color:var(--dim); display:flex; flex-wrap:wrap; gap:.7rem; }
        .legend i { display:inline-block; width:.7rem; height:.2rem; vertical-align:middle; margin-right:.25rem; }
        #timeline { list-style:none; margin:0; padding:0; max-height:12rem; overflow:auto;
                    background:var(--panel); border:1px solid var(--line); border-radius:6px; }
        #timeline li { padding:.25rem .6rem; border-bottom:1px solid var(--line); font-size:.82rem; }
        #timeline time { color:var(--dim); margin-right:.5rem; font-variant-numeric:tabular-nums; }
        form { display:flex; gap:.5rem; }
        input { background:var(--panel); color:var(--text); border:1px solid var(--line); border-radius:4px;
                padding:.35rem .5rem; width:22rem; }
        button { background:var(--accent); color:#0b1016; border:0; border-radius:4px; padding:.35rem .8rem; cursor:pointer; }
        [hidden] { display:none !important; }
        h3 { margin:.2rem 0 .4rem; font-size:.85rem; color:var(--dim); font-weight:500; }
        </style>
        </head>
        <body data-updates="0">
        <header>
          <h1>Airavata Gateway · cluster</h1>
          <span id="answered-by"></span>
          <span class="grow"></span>
          <span id="message">Sign in with an admin token to see the cluster.</span>
          <form id="login-form" autocomplete="off">
            <input id="token-input" type="password" placeholder="admin token (JWT)" aria-label="admin token">
            <button id="login-button" type="submit">Sign in</button>
          </form>
          <button id="logout" type="button" hidden>Sign out</button>
        </header>
        <main id="cluster" hidden>
          <section class="cards" id="cards"></section>
          <section>
            <h3>Nodes</h3>
            <table id="nodes">
              <thead><tr><th>node</th><th>state</th><th>Redis</th><th class="num">heartbeat age</th>
              <th class="num">uptime</th><th>version</th><th class="num">connections</th><th class="num">in/s</th>
              <th class="num">out/s</th><th class="num">p99</th><th class="num">memory</th></tr></thead>
              <tbody></tbody>
            </table>
          </section>
          <section class="charts" id="charts"></section>
          <section>
            <h3>Timeline (nodes joining, draining, leaving)</h3>
            <ul id="timeline"></ul>
          </section>
        </main>
        <script>
        "use strict";
        const KEY = "airavata.dashboard.token";
        const HISTORY = 300; // samples, one a second: five minutes
        const COLORS = ["#58a6ff", "#3fb950", "#d29922", "#f85149", "#bc8cff", "#39c5cf", "#ff7b72", "#e3b341"];
        const $ = (id) => document.getElementById(id);
        let history = [];
        let known = new Map(); // node id -> state, for the timeline
        let timer = null;

        function el(tag, attrs, text) {
          const node = document.createElement(tag);
          for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
          if (text !== undefined) node.textContent = text;
          return node;
        }
        function say(text, isError) {
          $("message").textContent = text;
          $("message").className = isError ? "error" : "";
        }
        function fmtInt(n) { return Number(n || 0).toLocaleString("en-US"); }
        function fmtRate(n) { return Number(n || 0) >= 100 ? fmtInt(Math.round(n)) : Number(n || 0).toFixed(1); }
        function fmtSeconds(s) {
          if (!s) return "0 ms";
          return s < 1 ? (s * 1000).toFixed(s < 0.01 ? 2 : 1) + " ms" : s.toFixed(2) + " s";
        }
        function fmtUptime(s) {
          const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
          return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
        }
        function fmtBytes(b) { return b ? (b / 1048576).toFixed(1) + " MiB" : "–"; }

        function signedIn(token) {
          $("login-form").hidden = !!token;
          $("logout").hidden = !token;
          $("cluster").hidden = !token;
        }
        function start() {
          const token = sessionStorage.getItem(KEY);
          signedIn(token);
          if (!token) return;
          say("connecting…");
          poll();
        }
        function stop(text, isError) {
          clearTimeout(timer);
          timer = null;
          say(text, isError);
        }

        async function poll() {
          const token = sessionStorage.getItem(KEY);
          if (!token) return;
          try {
            const response = await fetch("/api/v1/cluster", {
              headers: { Authorization: "Bearer " + token }, cache: "no-store" });
            if (response.status === 401 || response.status === 403) {
              const body = await response.json().catch(() => ({}));
              sessionStorage.removeItem(KEY);
              signedIn(null);
              history = []; known = new Map(); $("timeline").textContent = "";
              return stop((response.status === 401 ? "Token refused: " : "Not allowed: ") + (body.error || response.status), true);
            }
            if (!response.ok) throw new Error("HTTP " + response.status);
            render(await response.json());
            document.body.dataset.updates = String(Number(document.body.dataset.updates) + 1);
            say("live · updated " + new Date().toLocaleTimeString());
          } catch (error) {
            say("cannot reach the node (" + error.message + "); retrying", true);
          }
          timer = setTimeout(poll, 1000);
        }

        function render(data) {
          const t = data.totals;
          $("answered-by").textContent = "answered by " + data.answeredBy;
          const sample = { at: data.generatedAtMillis, totals: t, nodes: {} };
          for (const n of data.nodes) sample.nodes[n.nodeId] = n;
          history.push(sample);
          if (history.length > HISTORY) history.shift();
          renderCards(t);
          renderNodes(data.nodes);
          renderTimeline(data.nodes, data.generatedAtMillis);
          renderCharts();
        }

        function card(label, value, detail, id) {
          const box = el("div", { class: "card" });
          box.append(el("div", { class: "label" }, label));
          box.append(el("div", Object.assign({ class: "value" }, id ? { id } : {}), value));
          if (detail) box.append(el("div", { class: "detail" }, detail));
          return box;
        }
        function renderCards(t) {
          const f = t.figures || {};
          const states = Object.entries(t.nodesByState || {}).map(([s, n]) => `${n} ${s}`).join(", ");
          const refusals = Object.entries(f).filter(([k]) => k.startsWith("refused_"))
            .map(([k, v]) => `${k.slice(8)} ${fmtInt(v)}`).join(", ");
          const cards = [
            card("connections", fmtInt(t.activeConnections), `${fmtInt(t.totalConnections)} since start`, "total-connections"),
            card("nodes", fmtInt(t.nodes), states, "node-count"),
            card("events in / s", fmtRate(t.ingestedPerSecond), `${fmtInt(t.eventsAccepted)} accepted`),
            card("deliveries / s", fmtRate(t.deliveredPerSecond), `${fmtInt(t.deliveries)} delivered`),
            card("latency p50 / p99", `${fmtSeconds(t.latency.p50)} / ${fmtSeconds(t.latency.p99)}`,
                 `last ${t.latency.windowSeconds}s, ${fmtInt(t.latency.samples)} events`),
            card("resumes", `${fmtInt(f.resumes_recovered)} ok / ${fmtInt(f.resumes_failed)} failed`,
                 `${fmtInt(f.replays)} replays from ${fmtInt(f.replay_log_reads)} log reads`, "resumes"),
            card("slow-consumer closes", fmtInt(f.slow_consumer_closes), `${fmtInt(f.ping_timeouts)} ping timeouts`),
            card("rate-limited messages", fmtInt(f.rate_limited_messages), ""),
            card("refusals", fmtInt(Object.entries(f).filter(([k]) => k.startsWith("refused_")).reduce((a, [, v]) => a + v, 0)),
                 refusals || "none"),
          ];
          $("cards").replaceChildren(...cards);
        }

        function renderNodes(nodes) {
          const rows = nodes.map((n) => {
            const row = el("tr", { "data-node": n.nodeId });
            row.append(el("td", { class: "node" }, n.nodeId));
            const state = el("td", { class: "state" });
            state.append(el("span", { class: "badge s-" + (["ready", "draining", "starting"].includes(n.state) ? n.state : "unknown") }, n.state));
            row.append(state);
            row.append(el("td", { class: "redis r-" + (["up", "down", "none"].includes(n.redis) ? n.redis : "unknown") },
                          n.redis + (n.busReady ? "" : " (bus not ready)")));
            row.append(el("td", { class: "num" }, n.heartbeatAgeSeconds === undefined ? "–" : n.heartbeatAgeSeconds.toFixed(1) + " s"));
            row.append(el("td", { class: "num" }, fmtUptime(n.uptimeSeconds)));
            row.append(el("td", {}, n.version));
            row.append(el("td", { class: "num connections" }, fmtInt(n.activeConnections)));
            row.append(el("td", { class: "num" }, fmtRate(n.ingestedPerSecond)));
            row.append(el("td", { class: "num" }, fmtRate(n.deliveredPerSecond)));
            row.append(el("td", { class: "num" }, fmtSeconds(n.latency.p99)));
            row.append(el("td", { class: "num" }, fmtBytes((n.figures || {}).rss_bytes)));
            return row;
          });
          $("nodes").tBodies[0].replaceChildren(...rows);
        }

        function renderTimeline(nodes, at) {
          const now = new Map(nodes.map((n) => [n.nodeId, n.state]));
          const notes = [];
          for (const [id, state] of now) {
            if (!known.has(id)) notes.push(`${id} joined (${state})`);
            else if (known.get(id) !== state) notes.push(`${id}: ${known.get(id)} → ${state}`);
          }
          for (const id of known.keys()) if (!now.has(id)) notes.push(`${id} left`);
          known = now;
          for (const text of notes) {
            const item = el("li");
            item.append(el("time", {}, new Date(at).toLocaleTimeString()));
            item.append(document.createTextNode(text));
            $("timeline").prepend(item);
          }
          while ($("timeline").children.length > 200) $("timeline").lastChild.remove();
        }

        // Small SVG line charts over the kept history.
        function chart(title, series, unit) {
          const box = el("div", { class: "chart" });
          box.append(el("h2", {}, title));
          const ns = "http://www.w3.org/2000/svg";
          const svg = document.createElementNS(ns, "svg");
          svg.setAttribute("viewBox", "0 0 300 100");
          svg.setAttribute("preserveAspectRatio", "none");
          let max = 0;
          for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
          max = max > 0 ? max * 1.1 : 1;
          const n = Math.max(2, history.length);
          series.forEach((s) => {
            const points = s.values.map((v, i) => v === null ? null : `${(i / (n - 1)) * 300},${100 - (v / max) * 100}`)
              .filter((p) => p !== null).join(" ");
            const line = document.createElementNS(ns, "polyline");
            line.setAttribute("points", points);
            line.setAttribute("fill", "none");
            line.setAttribute("stroke", s.color);
            line.setAttribute("stroke-width", "1.5");
            line.setAttribute("vector-effect", "non-scaling-stroke");
            svg.append(line);
          });
          box.append(svg);
          const legend = el("div", { class: "legend" });
          for (const s of series) {
            const last = s.values[s.values.length - 1];
            const item = el("span");
            const swatch = el("i");
            swatch.style.background = s.color;
            item.append(swatch, document.createTextNode(`${s.name} ${last === null || last === undefined ? "–" : unit(last)}`));
            legend.append(item);
          }
          box.append(legend);
          return box;
        }
        function delta(pick) {
          return history.map((s, i) => {
            if (i === 0) return null;
            const dt = (s.at - history[i - 1].at) / 1000;
            const d = (pick(s) || 0) - (pick(history[i - 1]) || 0);
            return dt > 0 && d >= 0 ? d / dt : null;
          });
        }
        function renderCharts() {
          const ids = [...new Set(history.flatMap((s) => Object.keys(s.nodes)))].sort();
          const connections = ids.map((id, i) => ({
            name: id, color: COLORS[i % COLORS.length],
            values: history.map((s) => s.nodes[id] ? s.nodes[id].activeConnections : null) }));
          const charts = [
            chart("connections by node", connections, fmtInt),
            chart("events in / deliveries out per second", [
              { name: "in", color: COLORS[0], values: history.map((s) => s.totals.ingestedPerSecond) },
              { name: "out", color: COLORS[1], values: history.map((s) => s.totals.deliveredPerSecond) }], fmtRate),
            chart("delivery latency (last minute)", [
              { name: "p50", color: COLORS[0], values: history.map((s) => s.totals.latency.p50) },
              { name: "p99", color: COLORS[3], values: history.map((s) => s.totals.latency.p99) }], fmtSeconds),
            chart("resumes and refusals per second", [
              { name: "resumed", color: COLORS[1], values: delta((s) => s.totals.figures.resumes_recovered) },
              { name: "resume failed", color: COLORS[3], values: delta((s) => s.totals.figures.resumes_failed) },
              { name: "refused", color: COLORS[2], values: delta((s) => Object.entries(s.totals.figures)
                  .filter(([k]) => k.startsWith("refused_")).reduce((a, [, v]) => a + v, 0)) }], fmtRate),
          ];
          $("charts").replaceChildren(...charts);
        }

        $("login-form").addEventListener("submit", (event) => {
          event.preventDefault();
          const token = $("token-input").value.trim();
          $("token-input").value = "";
          if (!token) return;
          sessionStorage.setItem(KEY, token);
          start();
        });
        $("logout").addEventListener("click", () => {
          sessionStorage.removeItem(KEY);
          signedIn(null);
          history = []; known = new Map(); $("timeline").textContent = "";
          stop("Signed out.");
        });
        start();
        </script>
        </body>
        </html>

        """#
}
