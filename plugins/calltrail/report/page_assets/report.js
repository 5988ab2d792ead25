/* calltrail's report page: draws the charts from the figures the page carries (report-data), with
   the vendored Vega-Lite; every figure is also in the table beside its chart. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent || "{}");
  const pending = [];
  const SHORT = {
    outside_window: "outside the window", no_session: "no session", session_converted: "session already converted",
    missing: "BizibleId missing", invalid_format: "BizibleId malformed",
  };

  function draw(name, spec) {
    const el = document.querySelector(`[data-chart="${name}"]`);
    if (!el) return;
    el.removeAttribute("data-rendered");
    const full = Object.assign({$schema: "https://vega.github.io/schema/vega-lite/v5.json", width: "container",
                                config: {font: "system-ui, sans-serif", view: {stroke: null}}}, spec);
    const done = vegaEmbed(el, full, {renderer: "svg", actions: false})
      .then(() => { el.setAttribute("data-rendered", "yes"); })
      .catch((e) => { el.setAttribute("data-error", String(e)); el.textContent = "chart failed: " + e; });
    pending.push(done);
    return done;
  }

  function bars(rows, category, measures, opts) {
    opts = opts || {};
    const folded = measures.length > 1;
    const spec = {
      data: {values: rows},
      height: {step: folded ? 24 : 18},
      mark: {type: "bar", tooltip: true},
      encoding: {
        y: {field: category, type: "nominal", sort: opts.sort === undefined ? null : opts.sort, title: null,
            axis: {labelLimit: 260}},
        x: {field: folded ? "value" : measures[0], type: "quantitative", title: opts.title || null},
      },
    };
    if (folded) {
      spec.transform = [{fold: measures, as: ["measure", "value"]}];
      spec.encoding.yOffset = {field: "measure", sort: measures};
      spec.encoding.color = {field: "measure", type: "nominal", sort: measures, title: null,
                             legend: {orient: "bottom"}};
    } else if (opts.color) {
      spec.encoding.color = {field: opts.color, type: "nominal", title: null, legend: {orient: "bottom"}};
    }
    return spec;
  }

  function line(runs, field, title, format) {
    return {
      data: {values: runs.filter((r) => r[field] !== null && r[field] !== undefined)},
      height: 160, title: title,
      mark: {type: "line", point: true, tooltip: true},
      encoding: {
        x: {field: "measured_at", type: "temporal", title: null, axis: {format: "%b %d %H:%M", labelAngle: -30}},
        y: {field: field, type: "quantitative", title: null, axis: format ? {format: format} : {}},
      },
    };
  }

  function drawRevenue(model) {
    const rev = data.revenue;
    if (!rev || !rev.built) return;
    document.querySelectorAll('table[data-table="revenue"]').forEach((t) => {
      t.hidden = t.getAttribute("data-model") !== model;
    });
    const rows = (rev.by_model[model] || []).map((r) => Object.assign({label: `${r.channel} (${r.currency})`}, r));
    const currencies = new Set(rows.map((r) => r.currency));
    draw("revenue", Object.assign(bars(rows, "label", ["pipeline", "won"],
      {title: currencies.size === 1 ? `attributed amount, ${[...currencies][0]}` : "attributed amount"}),
      {title: `${model} model`}));
  }

  function journeyRows(j) {
    return j.touchpoints.map((t) => {
      const at = new Date(t.touchpoint_at + "Z");
      const start = t.seconds_after_session_start === null || t.seconds_after_session_start === undefined
        ? null : new Date(at.getTime() - 1000 * t.seconds_after_session_start);
      const position = j.kind === "opportunity" ? (t.opportunity_position || "") : (t.position || "");
      return Object.assign({}, t, {at: at.toISOString(), session_start: start ? start.toISOString() : null,
                                   shown_position: position});
    });
  }

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    return td;
  }

  function showJourney(id) {
    const journeys = (data.journeys && data.journeys.list) || [];
    const j = journeys.find((x) => x.id === id);
    const title = document.getElementById("journey-title");
    const table = document.querySelector('table[data-table="journey"]');
    if (!j || !table) return;
    document.getElementById("journey-pick").value = id;
    table.setAttribute("data-journey", id);
    const what = {person: "person", visitor: "anonymous visitor (BizibleId)", opportunity: "opportunity"}[j.kind];
    title.textContent = `${what} ${j.name}: ${j.touchpoints.length} touchpoint(s)` +
      (j.kind === "opportunity" ? `, positions and credit of the ${j.model} model` : "");
    const rows = journeyRows(j);
    const head = ["time (UTC)", "position", "type", "channel", "source", "campaign", "origin", "BizibleId",
                  "session start (UTC)"].concat(j.kind === "opportunity" ? ["credit", "attributed amount"] : []);
    table.tHead.innerHTML = "";
    const hr = table.tHead.insertRow();
    head.forEach((h) => { const th = document.createElement("th"); th.textContent = h; hr.appendChild(th); });
    const body = table.tBodies[0];
    body.innerHTML = "";
    rows.forEach((t) => {
      const tr = body.insertRow();
      tr.setAttribute("data-key", t.touchpoint_id);
      [t.touchpoint_at.replace("T", " "), t.shown_position, t.type, t.channel, t.source, t.campaign, t.origin,
       t.bizible_id, t.session_start ? t.session_start.slice(0, 19).replace("T", " ") : ""]
        .concat(j.kind === "opportunity"
          ? [Number(t.credit).toFixed(4), `${Number(t.attributed_amount).toFixed(2)} ${t.currency}`] : [])
        .forEach((v) => tr.appendChild(cell(v)));
    });
    draw("journey", {
      data: {values: rows},
      height: {step: 36},
      layer: [
        {transform: [{filter: "datum.session_start !== null"}],
         mark: {type: "rule", strokeWidth: 6, opacity: 0.35},
         encoding: {x: {field: "session_start", type: "temporal"}, x2: {field: "at"},
                    y: {field: "type", type: "nominal"}, color: {field: "channel", type: "nominal"}}},
        {mark: {type: "point", filled: true, size: 140, tooltip: {content: "data"}},
         encoding: {x: {field: "at", type: "temporal", title: null}, y: {field: "type", type: "nominal", title: null},
                    color: {field: "channel", type: "nominal", title: "channel", legend: {orient: "bottom"}},
                    shape: {field: "origin", type: "nominal", title: "origin", legend: {orient: "bottom"}}}},
        {mark: {type: "text", dy: -14, fontSize: 11},
         encoding: {x: {field: "at", type: "temporal"}, y: {field: "type", type: "nominal"},
                    text: {field: "shown_position"}}},
      ],
    });
  }

  function findJourney(text) {
    const key = text.trim().toLowerCase();
    if (!key) return null;
    const journeys = (data.journeys && data.journeys.list) || [];
    return journeys.find((x) => x.name.toLowerCase() === key) ||
      journeys.find((x) => x.keys.some((k) => k.toLowerCase() === key)) || null;
  }

  function init() {
    if (data.channels) {
      draw("channels", bars(data.channels, "channel", ["touchpoints", "calls"]));
      draw("subchannels", bars(data.subchannels.map((s) => Object.assign({label: `${s.channel} / ${s.subchannel}`}, s)),
        "label", ["touchpoints"], {color: "channel"}));
      draw("types", bars(data.types, "type", ["touchpoints", "calls"]));
      draw("campaigns", bars(data.campaigns, "campaign", ["touchpoints"]));
    }
    if (data.revenue && data.revenue.built) {
      const select = document.getElementById("model");
      select.addEventListener("change", () => drawRevenue(select.value));
      drawRevenue(select.value || data.revenue.default);
    }
    if (data.trend && data.trend.runs.length) {
      const runs = data.trend.runs;
      draw("trend_match_rate", line(runs, "match_rate_all", "match rate", ".0%"));
      draw("trend_missing", line(runs, "missing_bizible_id_share_all", "calls missing a BizibleId", ".1%"));
      draw("trend_quarantine", line(runs, "quarantined_rows_new", "rows quarantined since the previous run", "d"));
    }
    if (data.not_merged) {
      const nm = data.not_merged;
      draw("not_merged", bars(Object.keys(SHORT).map((k) => ({reason: SHORT[k], calls: nm.counts[k]})),
        "reason", ["calls"]));
      draw("outside_minutes", bars(nm.minutes, "bucket", ["tasks"]));
    }
    if (data.journeys && data.journeys.default) {
      const pick = document.getElementById("journey-pick");
      const search = document.getElementById("journey-search");
      const status = document.getElementById("journey-status");
      pick.addEventListener("change", () => { status.textContent = ""; showJourney(pick.value); });
      search.addEventListener("input", () => {
        const found = findJourney(search.value);
        if (found) { status.textContent = ""; showJourney(found.id); }
        else if (search.value.trim()) {
          status.textContent = `no journey on this page for ${search.value.trim()}`;
        }
      });
      showJourney(data.journeys.default);
    }
    Promise.allSettled(pending).then(() => { document.body.setAttribute("data-charts", "done"); });
  }

  init();
})();
