// The success page's wait (served at {billing}/success.js, so a host's
// Content-Security-Policy can forbid inline scripts). It holds the status
// stream open (server-sent events: told the moment the payment settles,
// and no request while nothing happens); without EventSource, with streams
// off, or when the stream is refused (429), it polls the status route.
(function () {
  var main = document.getElementById("waiting");
  if (main.dataset.outcome !== "waiting" && main.dataset.outcome !== "timed_out") { return; }
  var url = main.dataset.statusUrl, stream = main.dataset.streamUrl, next = main.dataset.next;
  var every = parseInt(main.dataset.pollMs, 10), done = false;
  // Acts on a status; true when the page is left.
  function act(s) {
    if (done || !s) { return done; }
    if (s.checkout) {
      if (s.checkout.status === "completed") { done = true; window.location.reload(); }
    } else if (s.access) {
      done = true; window.location.replace(next);
    }
    return done;
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (!act(s)) { setTimeout(poll, every); } })
      .catch(function () { setTimeout(poll, every * 2); });
  }
  if (!stream || !window.EventSource) { setTimeout(poll, every); return; }
  var source = new EventSource(stream, { withCredentials: true });
  source.onmessage = function (e) {
    var s = null;
    try { s = JSON.parse(e.data); } catch (ignored) { s = null; }
    if (act(s)) { source.close(); }
  };
  // A refused or failed stream is closed for good: poll instead. (An
  // ended one reconnects by itself.)
  source.onerror = function () {
    if (source.readyState === EventSource.CLOSED && !done) { setTimeout(poll, every); }
  };
})();
