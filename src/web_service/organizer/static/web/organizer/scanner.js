/* The door's scanner. A QR code is read in the browser, from the camera's frames or from a
   photo, by the browser's BarcodeDetector when it reads QR codes, else by jsQR (vendored);
   a code can also be typed. Each scan is posted to the web service with a nonce of its own,
   and a scan re-sent after a failed answer keeps its nonce, so the booking service counts
   it once. The answer is shown big; the running count refreshes after every scan. */
(function () {
  "use strict";

  const root = document.querySelector("[data-scanner]");
  if (!root) { return; }
  const checkinUrl = root.dataset.checkinUrl;
  const resultBox = document.getElementById("scan-result");
  const manual = document.querySelector("[data-manual-form]");
  const csrf = manual.querySelector("input[name=csrfmiddlewaretoken]").value;
  const video = root.querySelector("[data-video]");
  const startButton = root.querySelector("[data-camera-start]");
  const stopButton = root.querySelector("[data-camera-stop]");
  const photo = root.querySelector("[data-photo]");
  const decoderNote = root.querySelector("[data-decoder-note]");
  const canvas = document.createElement("canvas");
  const pixels = canvas.getContext("2d", { willReadFrequently: true });
  // The same code in front of the camera is sent once, not once per frame.
  const REPEAT_MS = 4000;
  const FRAME_MS = 200;

  let detector = null;
  let stream = null;
  let sending = false;
  let last = { code: "", at: 0 };
  let pending = null;

  function freshNonce() {
    const bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  function say(kind, headline, line) {
    const box = document.createElement("div");
    box.className = "scan-result scan-" + kind;
    box.dataset.result = kind;
    const big = document.createElement("p");
    big.className = "scan-headline";
    big.textContent = headline;
    const small = document.createElement("p");
    small.className = "scan-line";
    small.textContent = line;
    box.append(big, small);
    resultBox.replaceChildren(box);
  }

  function setDecoder(name) {
    root.dataset.decoder = name;
    decoderNote.textContent = name === "BarcodeDetector"
      ? "Codes are read by the browser's barcode detector."
      : "Codes are read by jsQR, in this page.";
  }

  async function prepareDetector() {
    setDecoder("jsQR");
    if (!("BarcodeDetector" in window)) { return; }
    try {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      if (formats.includes("qr_code")) {
        detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        setDecoder("BarcodeDetector");
      }
    } catch (error) {
      detector = null;
    }
  }

  function withJsQR(source, width, height) {
    const scale = Math.min(1, 1280 / Math.max(width, height));
    canvas.width = Math.max(1, Math.round(width * scale));
    canvas.height = Math.max(1, Math.round(height * scale));
    pixels.drawImage(source, 0, 0, canvas.width, canvas.height);
    const image = pixels.getImageData(0, 0, canvas.width, canvas.height);
    const found = window.jsQR(image.data, image.width, image.height, {
      inversionAttempts: "attemptBoth"
    });
    return found && found.data ? found.data : null;
  }

  /* One picture (a camera frame, a photo) to the text of the QR code in it, or null. The
     camera and a photo go through here alike. */
  async function decode(source, width, height) {
    if (detector) {
      try {
        const found = await detector.detect(source);
        if (found.length) { return found[0].rawValue; }
      } catch (error) {
        // An image the detector cannot take: jsQR reads pixels, whatever their source.
      }
    }
    return withJsQR(source, width, height);
  }

  async function send(code, nonce) {
    pending = { code: code, nonce: nonce };
    sending = true;
    resultBox.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(checkinUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-Scanner": "1", "X-CSRFToken": csrf },
        body: new URLSearchParams({ code: code, nonce: nonce, csrfmiddlewaretoken: csrf })
      });
      if (response.redirected && new URL(response.url).pathname === "/login") {
        window.location.assign(response.url);
        return;
      }
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      resultBox.innerHTML = await response.text();
      if (!resultBox.querySelector("[data-retry]")) { pending = null; }
      document.body.dispatchEvent(new Event("scanned"));
    } catch (error) {
      say("error", "Not recorded: try again", "The scan did not reach the server (" + error.message + ").");
      const retry = document.createElement("button");
      retry.type = "button";
      retry.className = "button";
      retry.dataset.retry = "";
      retry.textContent = "Try again";
      resultBox.firstChild.append(retry);
    } finally {
      sending = false;
      resultBox.removeAttribute("aria-busy");
    }
  }

  function scan(code) {
    const now = Date.now();
    if (sending || (code === last.code && now - last.at < REPEAT_MS)) { return; }
    last = { code: code, at: now };
    send(code, freshNonce());
  }

  resultBox.addEventListener("click", function (event) {
    if (event.target.closest("[data-retry]") && pending && !sending) {
      send(pending.code, pending.nonce);
    }
  });

  manual.addEventListener("submit", function (event) {
    event.preventDefault();
    const field = manual.querySelector("[name=code]");
    const code = field.value.trim();
    if (!code) { field.focus(); return; }
    last = { code: "", at: 0 };
    send(code, freshNonce()).then(function () {
      if (!pending) { field.value = ""; }
    });
  });

  photo.addEventListener("change", async function () {
    const file = photo.files && photo.files[0];
    if (!file) { return; }
    let code = null;
    try {
      const bitmap = await window.createImageBitmap(file);
      code = await decode(bitmap, bitmap.width, bitmap.height);
      bitmap.close();
    } catch (error) {
      code = null;
    }
    photo.value = "";
    if (code) {
      last = { code: "", at: 0 };
      scan(code);
    } else {
      say("invalid", "No QR code found", "Take the photo closer, with the whole code in it.");
    }
  });

  async function frame() {
    if (!stream) { return; }
    if (!sending && video.readyState >= 2 && video.videoWidth) {
      const code = await decode(video, video.videoWidth, video.videoHeight);
      if (code) { scan(code); }
    }
    window.setTimeout(frame, FRAME_MS);
  }

  async function startCamera() {
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "environment" }, audio: false
      });
    } catch (error) {
      say("error", "No camera", "The camera could not start (" + error.name + "). Read a photo or type the code.");
      return;
    }
    video.srcObject = stream;
    video.hidden = false;
    startButton.hidden = true;
    stopButton.hidden = false;
    await video.play();
    frame();
  }

  function stopCamera() {
    if (stream) { stream.getTracks().forEach(function (track) { track.stop(); }); }
    stream = null;
    video.hidden = true;
    startButton.hidden = false;
    stopButton.hidden = true;
  }

  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    startButton.hidden = false;
    startButton.addEventListener("click", startCamera);
    stopButton.addEventListener("click", stopCamera);
  } else {
    root.querySelector("[data-camera-note]").textContent =
      "This browser gives this page no camera (it needs HTTPS): read a photo or type the code.";
  }
  prepareDetector();
  window.turnstileScanner = { decode: decode };
})();
