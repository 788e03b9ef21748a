/* The class view's live refresh (server.live): every few seconds, while the tab is visible, ask the site whether the
   class changed (a small JSON version); when it did, fetch this same page and swap in its #class-live part — the grid,
   the counts, stuck and quiet — in place: no reload, no flicker, the filter form and the scroll position kept. A part
   holding the keyboard focus is left for the next round. Without JavaScript the page is the same, only static. */
(function () {
  "use strict";
  var part = document.getElementById("class-live");
  if (!part || !part.dataset.liveUrl || !window.fetch || !window.DOMParser) return;
  var version = part.dataset.version, every = Math.max(2000, +part.dataset.every || 15000), busy = false;
  var status = document.getElementById("live-status");
  function json(r) { if (!r.ok) throw new Error(r.status); return r.json(); }
  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("class-live");
    if (!fresh || part.contains(document.activeElement)) return false;
    var scrolls = Array.prototype.map.call(part.querySelectorAll(".scroll"), function (s) { return s.scrollLeft; });
    part.replaceWith(fresh);
    part = fresh;
    Array.prototype.forEach.call(part.querySelectorAll(".scroll"), function (s, i) { s.scrollLeft = scrolls[i] || 0; });
    return true;
  }
  function tick() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(part.dataset.liveUrl, {credentials: "same-origin", headers: {Accept: "application/json"}}).then(json).then(function (v) {
      if (v.version === version) return;
      return fetch(location.href, {credentials: "same-origin", headers: {Accept: "text/html"}}).then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.text();
      }).then(function (html) {
        if (!swap(html)) return;
        version = v.version;
        if (status) status.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
      });
    }).catch(function () { /* offline or signed out: try again next time */ }).then(function () { busy = false; });
  }
  setInterval(tick, every);
  document.addEventListener("visibilitychange", tick);
})();
