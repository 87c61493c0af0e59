/* Turnstile's pages: the hold countdown and the sandbox card form. Everything else works
   without scripts; htmx (vendored) refreshes availability in place. */
(function () {
  "use strict";

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function formatRemaining(seconds) {
    var s = Math.max(0, Math.ceil(seconds));
    return pad(Math.floor(s / 60)) + ":" + pad(s % 60);
  }

  /* A hold's countdown, mm:ss to expires_at. The server's clock says when "now" is (the
     page carries it), so a wrong clock in the browser does not move the end of the hold. */
  function startCountdown(box) {
    var display = box.querySelector("[data-countdown]");
    var announce = box.querySelector("[data-countdown-announce]");
    var expiresAt = Date.parse(box.dataset.expiresAt);
    var skew = Date.parse(box.dataset.serverNow) - Date.now();
    var warned = false;
    function tick() {
      var remaining = (expiresAt - (Date.now() + skew)) / 1000;
      display.textContent = formatRemaining(remaining);
      if (!warned && remaining <= 60 && remaining > 0) {
        warned = true;
        announce.textContent = "About one minute left to pay.";
      }
      if (remaining <= 0) {
        expire(box);
        return;
      }
      window.setTimeout(tick, 250);
    }
    tick();
  }

  function expire(box) {
    box.classList.add("expired");
    var message = document.getElementById("hold-expired");
    if (message) { message.hidden = false; }
    var announce = box.querySelector("[data-countdown-announce]");
    if (announce) { announce.textContent = "Your hold ran out."; }
    var release = document.getElementById("hold-release");
    if (release && window.htmx && !release.hasAttribute("hx-get")) {
      /* Until the booking service's sweeper has released the hold, say so, then that it has. */
      release.setAttribute("hx-get", release.dataset.stateUrl);
      release.setAttribute("hx-trigger", "load, every 2s");
      window.htmx.process(release);
    }
    document.querySelectorAll("[data-needs-hold]").forEach(function (element) {
      element.querySelectorAll("input, button, select").forEach(function (field) {
        field.disabled = true;
      });
    });
  }

  /* The sandbox's test cards. The card's number never leaves the browser: its fields have
     no name, so the form sends only the token picked here (as a real gateway's script
     would exchange the card for a token). */
  var TEST_CARDS = {
    "4242424242424242": "tok_visa",
    "4000000000000002": "tok_chargeDeclined",
    "4000000000009995": "tok_chargeDeclinedInsufficientFunds",
    "4000000000000119": "tok_processingError",
    "4000000000000259": "tok_chargeThenTimeout"
  };

  function cardToken(number) {
    var digits = String(number).replace(/[\s-]/g, "");
    return TEST_CARDS[digits] || "tok_unknown_card";
  }

  function prepareCardForm(form) {
    form.addEventListener("submit", function (event) {
      var number = form.querySelector("[data-card-number]");
      var token = form.querySelector("input[name=payment_token]");
      if (!number.value.trim()) {
        event.preventDefault();
        number.setAttribute("aria-invalid", "true");
        number.focus();
        return;
      }
      token.value = cardToken(number.value);
    });
  }

  function ready() {
    document.querySelectorAll("[data-expires-at]").forEach(startCountdown);
    document.querySelectorAll("form[data-card-form]").forEach(prepareCardForm);
  }

  window.turnstile = { formatRemaining: formatRemaining, cardToken: cardToken };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
