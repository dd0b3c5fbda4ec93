// pdp report: draws the charts of the page from its embedded report document (no network).
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var report = JSON.parse(document.getElementById("report-data").textContent);

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // Horizontal bars: rows of [label, [[value, cssClass, title], ...]] stacked left to right.
  function bars(id, rows, width) {
    var host = document.getElementById(id);
    if (!rows.length) { host.textContent = "Nothing to show."; return; }
    var rowH = 20, labelW = Math.min(360, width * 0.45), barW = width - labelW - 60;
    var max = Math.max.apply(null, rows.map(function (r) {
      return r[1].reduce(function (s, p) { return s + p[0]; }, 0);
    })) || 1;
    var svg = el("svg", {"class": "chart", "data-chart": id.replace("chart-", ""),
      viewBox: "0 0 " + width + " " + (rows.length * rowH + 4), role: "img"});
    rows.forEach(function (row, i) {
      var y = i * rowH + 2, x = labelW, total = 0;
      svg.appendChild(el("text", {x: 0, y: y + 13}, row[0].length > 58 ? row[0].slice(0, 57) + "…" : row[0]));
      row[1].forEach(function (part) {
        var w = part[0] / max * barW;
        if (part[0] > 0) {
          var rect = el("rect", {x: x, y: y, width: Math.max(w, 1), height: rowH - 5, "class": part[1],
            "data-value": part[0]});
          rect.appendChild(el("title", {}, part[2] + ": " + part[0]));
          svg.appendChild(rect);
        }
        x += w; total += part[0];
      });
      svg.appendChild(el("text", {x: x + 4, y: y + 13, "class": "value"}, String(total)));
    });
    host.appendChild(svg);
  }

  // Vertical stacked bars per hour.
  function hourly(id, hours, width) {
    var host = document.getElementById(id);
    if (!hours.length) { host.textContent = "Nothing to show."; return; }
    var h = 160, slot = Math.max(2, Math.min(24, (width - 40) / hours.length));
    var max = Math.max.apply(null, hours.map(function (x) { return x.allow + x.challenge + x.deny; })) || 1;
    var svg = el("svg", {"class": "chart", "data-chart": "hourly", viewBox: "0 0 " + width + " " + (h + 30), role: "img"});
    hours.forEach(function (hour, i) {
      var x = 30 + i * slot, y = h;
      [["allow", hour.allow], ["challenge", hour.challenge], ["deny", hour.deny]].forEach(function (p) {
        var bh = p[1] / max * (h - 10);
        if (p[1] > 0) {
          y -= bh;
          var rect = el("rect", {x: x, y: y, width: slot * 0.8, height: bh, "class": p[0], "data-value": p[1]});
          rect.appendChild(el("title", {}, hour.hour + " " + p[0] + ": " + p[1]));
          svg.appendChild(rect);
        }
      });
    });
    svg.appendChild(el("text", {x: 30, y: h + 20}, hours[0].hour));
    if (hours.length > 1) {
      svg.appendChild(el("text", {x: 30 + hours.length * slot, y: h + 20, "text-anchor": "end"},
        hours[hours.length - 1].hour));
    }
    host.appendChild(svg);
  }

  var width = 900;
  hourly("chart-hourly", report.hourly, width);
  bars("chart-report-only", report.reportOnly.map(function (p) {
    return [p.displayName, [[p.wouldBlock, "deny", "would block"], [p.wouldPrompt, "challenge", "would prompt"]]];
  }), width);
  bars("chart-policies", report.policies.map(function (p) {
    var r = p.results;
    return [p.displayName, [[r.success || 0, "allow", "success"], [r.failure || 0, "deny", "failure"],
      [(r.reportOnlySuccess || 0) + (r.reportOnlyFailure || 0) + (r.reportOnlyInterrupted || 0), "other", "report-only"]]];
  }), width);
  bars("chart-friction", report.friction.map(function (f) {
    return [(f.appId || "(none)") + " (" + (f.challengeRate * 100).toFixed(1) + "%)",
      [[f.challenged, "challenge", "challenged"], [f.denied, "deny", "denied"]]];
  }), width);
  bars("chart-travel", report.travel.map(function (t) {
    return [t.kind + " " + t.from + " → " + t.to,
      [[t.detections, t.kind === "impossibleTravel" ? "deny" : "challenge", t.kind]]];
  }), width);
  document.body.setAttribute("data-rendered", "true");
}());
