// Live pages: follow the change feed (Server-Sent Events through
// /console/changes) and, when an event arrives, fetch this page again and
// swap in each region marked data-live. The page reads the same without it.
(function () {
  "use strict";
  var feed = document.body.getAttribute("data-feed");
  if (!feed || !window.EventSource || !window.fetch) { return; }
  var pending = null;

  // What the server last sent for each region: a region is swapped only when
  // that changes, never because the reader opened a <details> or typed.
  var served = {};
  document.querySelectorAll("[data-live]").forEach(function (region) { served[region.id] = region.innerHTML; });

  function swap(region, html) {
    var open = [], typed = {};
    region.querySelectorAll("details").forEach(function (d, i) { if (d.open) { open.push(i); } });
    region.querySelectorAll("textarea[id], input[type=text][id]").forEach(function (f) { typed[f.id] = f.value; });
    region.innerHTML = html;
    var details = region.querySelectorAll("details");
    open.forEach(function (i) { if (details[i]) { details[i].open = true; } });
    Object.keys(typed).forEach(function (id) {
      var field = document.getElementById(id);
      if (field) { field.value = typed[id]; }
    });
  }

  function refresh() {
    pending = null;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var changed = false;
        document.querySelectorAll("[data-live]").forEach(function (region) {
          var next = fresh.getElementById(region.id);
          if (next && next.innerHTML !== served[region.id]) {
            served[region.id] = next.innerHTML;
            swap(region, next.innerHTML);
            changed = true;
          }
        });
        if (changed) {
          document.getElementById("live-status").textContent = "Updated at " + new Date().toLocaleTimeString() + ".";
        }
      })
      .catch(function () { /* the next event tries again */ });
  }

  function soon() {
    if (pending === null) { pending = window.setTimeout(refresh, 150); }
  }

  var source = new EventSource(feed);
  // An event between this page's rendering and the subscription would be
  // missed: look once as soon as the feed is open.
  source.addEventListener("open", soon);
  source.addEventListener("message", soon);
}());
