// The success page's polling (served at {billing}/success.js, so a host's
// Content-Security-Policy can forbid inline scripts).
(function () {
  var main = document.getElementById("waiting");
  if (main.dataset.outcome !== "waiting" && main.dataset.outcome !== "timed_out") { return; }
  var url = main.dataset.statusUrl, next = main.dataset.next, every = parseInt(main.dataset.pollMs, 10);
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (s && s.checkout) { if (s.checkout.status === "completed") { window.location.reload(); } else { setTimeout(poll, every); } }
        else if (s && s.access) { window.location.replace(next); } else { setTimeout(poll, every); }
      })
      .catch(function () { setTimeout(poll, every * 2); });
  }
  setTimeout(poll, every);
})();
