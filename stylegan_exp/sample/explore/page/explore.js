// The explorer page: every image comes from the server's compiled generator. Each image has a channel
// that keeps at most one request in flight and only the latest one waiting; a response that is no longer
// the latest request is dropped, so the shown image always matches the controls once they settle.
"use strict";

const $ = (id) => document.getElementById(id);
let info = null;

function showError(text) {
  $("status").textContent = text.trim();
}

function channel(img, cellSize, onShown) {
  let inFlight = false;
  let pending = null;
  let latest = null;

  async function run(query) {
    inFlight = true;
    try {
      const response = await fetch(query);
      if (query !== latest) return;
      if (!response.ok) {
        latest = null; // asking again may be answered (after the user fixes the input)
        showError(await response.text());
        return;
      }
      const blob = await response.blob();
      if (query !== latest) return;
      const old = img.src;
      img.onload = () => { img.style.width = `${img.naturalWidth * zoom(cellSize)}px`; };
      img.src = URL.createObjectURL(blob);
      img.dataset.query = query;
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      showError("");
      if (onShown) onShown(response, img.src);
    } catch (error) {
      if (query === latest) latest = null;
      showError(String(error));
    } finally {
      inFlight = false;
      if (pending !== null) {
        const next = pending;
        pending = null;
        run(next);
      }
    }
  }

  return (query) => {
    if (query === latest) return; // shown already, or on its way
    latest = query;
    if (inFlight) pending = query;
    else run(query);
  };
}

// Small models' images are drawn larger (pixelated): a face at least `cellSize` px.
function zoom(cellSize) {
  return Math.max(1, Math.floor(cellSize / info.resolution));
}

function truncation() {
  const cutoff = Number($("cutoff").value);
  return { psi: $("psi").value, cutoff: cutoff >= info.num_layers ? "none" : String(cutoff) };
}

function params(values) {
  return new URLSearchParams({ ...values, ...truncation() }).toString();
}

function showLabels() {
  $("psi-value").textContent = `ψ = ${Number($("psi").value).toFixed(2)}`;
  const cutoff = Number($("cutoff").value);
  $("cutoff-value").textContent = cutoff >= info.num_layers ? "every layer" : `layers below ${cutoff}`;
}

let faceChannel, mixChannel, interpChannel;

function requestFace() {
  const seed = $("seed").value.trim();
  const query = `api/face.png?${params({ seed })}`;
  location.hash = params({ seed });
  faceChannel(query);
}

function requestMix() {
  mixChannel(`api/mix.png?${params({
    rows: $("mix-rows").value, columns: $("mix-columns").value, range: $("mix-range").value })}`);
}

function requestInterpolation() {
  interpChannel(`api/interpolation.png?${params({
    start: $("interp-start").value, stop: $("interp-stop").value, steps: $("interp-steps").value })}`);
}

function requestAll() {
  showLabels();
  requestFace();
  requestMix();
  requestInterpolation();
}

function faceShown(response, url) {
  const score = response.headers.get("X-D-Score");
  $("score").textContent = score === null ? "no D in this snapshot" : `D score ${Number(score).toFixed(3)}`;
  const { psi } = truncation();
  $("save").href = url;
  $("save").download = `example-${$("seed").value.trim()}-psi${psi}.png`;
}

function fromHash() {
  const saved = new URLSearchParams(location.hash.slice(1));
  if (saved.has("seed")) $("seed").value = saved.get("seed");
  if (saved.has("psi")) $("psi").value = saved.get("psi");
  if (saved.has("cutoff")) {
    const cutoff = saved.get("cutoff");
    $("cutoff").value = cutoff === "none" ? info.num_layers : cutoff;
  }
}

async function start() {
  info = await (await fetch("api/info")).json();
  $("about").textContent = `${info.snapshot} — ${info.arch}, ${info.size}, kimg ${info.kimg}; ` +
    `${info.num_layers} style layers`;
  $("seed").value = info.seed;
  $("psi").value = info.psi;
  $("cutoff").max = info.num_layers;
  $("cutoff").value = info.cutoff === null ? info.num_layers : info.cutoff;
  $("mix-rows").value = info.mixing_rows.join(",");
  $("mix-columns").value = info.mixing_columns.join(",");
  for (const [name, [lo, hi]] of Object.entries(info.ranges)) {
    $("mix-range").add(new Option(`${name} (layers ${lo}–${hi - 1})`, name));
  }
  $("mix-range").value = info.mixing_range;
  [$("interp-start").value, $("interp-stop").value] = info.interpolation_seeds;
  $("interp-steps").value = info.interpolation_steps;
  fromHash();

  faceChannel = channel($("face"), 128, faceShown);
  mixChannel = channel($("mix"), 64);
  interpChannel = channel($("interp"), 64);

  $("show").addEventListener("click", requestFace);
  $("seed").addEventListener("change", requestFace);
  $("new-face").addEventListener("click", () => {
    $("seed").value = crypto.getRandomValues(new Uint32Array(1))[0];
    requestFace();
  });
  for (const id of ["psi", "cutoff"]) $(id).addEventListener("input", requestAll);
  $("mix-show").addEventListener("click", requestMix);
  $("mix-range").addEventListener("change", requestMix);
  $("interp-show").addEventListener("click", requestInterpolation);
  document.body.dataset.ready = "true";
  requestAll();
}

start().catch((error) => showError(`cannot start: ${error}`));
