// semat web page: open an image, draw boxes, matte through the local HTTP API.
// Plain browser JavaScript, no build step and no network access beyond this server.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const canvas = $('canvas');
  const ctx = canvas.getContext('2d');
  const OUTPUTS = ['alpha', 'cutout', 'composite'];
  const HANDLE = 9;      // corner grab radius in screen pixels
  const MIN_BOX = 4;     // boxes smaller than this (image pixels) are treated as stray clicks

  const state = {
    file: null,          // the File or Blob last opened
    image: null,         // HTMLImageElement
    imageId: null,       // id from POST /v1/images
    boxes: [],           // [{x0, y0, x1, y1}] in image pixels
    selected: -1,
    drag: null,          // {mode: 'new'|'move'|'resize', index, corner, start, orig}
    controller: null,    // AbortController of the request in flight
    runTimer: null,
  };

  // ---- status and errors -------------------------------------------------------------------

  let busyTimer = null;
  function setBusy(text) {
    const status = $('status');
    clearInterval(busyTimer);
    if (!text) {
      status.classList.remove('busy');
      status.textContent = '';
      return;
    }
    const start = performance.now();
    status.classList.add('busy');
    const tick = () => { status.textContent = `${text} ${((performance.now() - start) / 1000).toFixed(1)} s`; };
    tick();
    busyTimer = setInterval(tick, 100);
  }

  function setDone(text) {
    clearInterval(busyTimer);
    $('status').classList.remove('busy');
    $('status').textContent = text;
  }

  function showError(message) {
    const box = $('error');
    box.textContent = message;
    box.hidden = !message;
  }

  // Turns any failed response into one readable sentence.
  async function apiError(response) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && body.error) message = body.error.message || body.error.code;
    } catch (_) { /* not JSON */ }
    if (response.status === 503) message += ' (the server is busy; try again in a moment)';
    const err = new Error(message);
    err.status = response.status;
    err.code = null;
    return err;
  }

  // ---- loading -----------------------------------------------------------------------------

  async function openFile(file) {
    if (!file) return;
    showError('');
    if (!/^image\/(png|jpeg|webp)$/.test(file.type) && !/\.(png|jpe?g|webp)$/i.test(file.name || '')) {
      showError(`"${file.name}" is not a PNG, JPEG or WebP image.`);
      return;
    }
    const url = URL.createObjectURL(file);
    const img = new Image();
    try {
      await new Promise((resolve, reject) => {
        img.onload = resolve;
        img.onerror = () => reject(new Error(`"${file.name}" cannot be read as an image.`));
        img.src = url;
      });
    } catch (e) {
      showError(e.message);
      return;
    }
    state.file = file;
    state.image = img;
    state.imageId = null;
    state.boxes = [];
    state.selected = -1;
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    canvas.hidden = false;
    $('hint').hidden = true;
    $('results').hidden = true;
    $('info').textContent = `${file.name || 'image'}: ${img.naturalWidth} × ${img.naturalHeight}`;
    updateButtons();
    draw();
    try {
      await upload();
      setDone('Image ready: drag a box around the subject.');
    } catch (e) {
      setDone('');
      showError(`Upload failed: ${e.message}`);
    }
  }

  // Uploads once so refining boxes sends only the boxes.
  async function upload() {
    setBusy('Uploading…');
    const form = new FormData();
    form.append('image', state.file, state.file.name || 'image.png');
    const response = await fetch('/v1/images', { method: 'POST', body: form });
    if (!response.ok) throw await apiError(response);
    state.imageId = (await response.json()).id;
    setBusy('');
  }

  // ---- matting -----------------------------------------------------------------------------

  function scheduleRun() {
    if (!$('auto').checked) return;
    clearTimeout(state.runTimer);
    state.runTimer = setTimeout(run, 150);
  }

  async function run() {
    if (!state.image || state.boxes.length === 0) return;
    if (state.controller) state.controller.abort();  // only the latest boxes matter
    const controller = new AbortController();
    state.controller = controller;
    showError('');
    $('results').classList.add('stale');
    setBusy('Matting…');
    const body = JSON.stringify({
      boxes: state.boxes.map((b) => [b.x0, b.y0, b.x1, b.y1].map(Math.round)),
      outputs: OUTPUTS,
      background: $('background').value,
    });
    try {
      let response;
      for (let attempt = 0; attempt < 2; ++attempt) {
        if (!state.imageId) await upload();
        response = await fetch(`/v1/images/${state.imageId}/matte`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body,
          signal: controller.signal,
        });
        // The stored copy expired on the server: upload again once.
        if (response.status === 404) { state.imageId = null; continue; }
        break;
      }
      if (!response.ok) throw await apiError(response);
      const result = await response.json();
      if (controller !== state.controller) return;
      for (const name of OUTPUTS) {
        const url = `data:image/png;base64,${result.outputs[name]}`;
        $(name).src = url;
        $(`dl-${name}`).href = url;
      }
      await Promise.all(OUTPUTS.map((n) => $(n).decode().catch(() => {})));
      $('results').hidden = false;
      $('results').classList.remove('stale');
      $('results').dataset.ready = String(Date.now());
      setDone(`Done in ${result.seconds.toFixed(2)} s (${result.method}${result.model ? `, ${result.model}` : ''}).`);
    } catch (e) {
      if (e.name === 'AbortError') return;
      setDone('');
      $('results').classList.remove('stale');
      showError(e instanceof TypeError ? `Cannot reach the semat server (${e.message}).` : e.message);
    } finally {
      if (controller === state.controller) state.controller = null;
    }
  }

  // ---- box editing -------------------------------------------------------------------------

  function toImage(event) {
    const r = canvas.getBoundingClientRect();
    const sx = canvas.width / r.width;
    const sy = canvas.height / r.height;
    return {
      x: Math.min(Math.max((event.clientX - r.left) * sx, 0), canvas.width),
      y: Math.min(Math.max((event.clientY - r.top) * sy, 0), canvas.height),
      scale: sx,
    };
  }

  function normalised(b) {
    return { x0: Math.min(b.x0, b.x1), y0: Math.min(b.y0, b.y1), x1: Math.max(b.x0, b.x1), y1: Math.max(b.y0, b.y1) };
  }

  function hit(p) {
    const r = HANDLE * p.scale;
    for (let i = state.boxes.length - 1; i >= 0; --i) {
      const b = state.boxes[i];
      const corners = { nw: [b.x0, b.y0], ne: [b.x1, b.y0], sw: [b.x0, b.y1], se: [b.x1, b.y1] };
      for (const [name, [cx, cy]] of Object.entries(corners))
        if (Math.abs(p.x - cx) <= r && Math.abs(p.y - cy) <= r) return { index: i, corner: name };
    }
    for (let i = state.boxes.length - 1; i >= 0; --i) {
      const b = state.boxes[i];
      if (p.x >= b.x0 && p.x <= b.x1 && p.y >= b.y0 && p.y <= b.y1) return { index: i, corner: null };
    }
    return null;
  }

  canvas.addEventListener('pointerdown', (event) => {
    if (!state.image || event.button !== 0) return;
    canvas.setPointerCapture(event.pointerId);
    const p = toImage(event);
    const h = hit(p);
    if (h && h.corner) {
      state.drag = { mode: 'resize', index: h.index, corner: h.corner };
    } else if (h) {
      state.drag = { mode: 'move', index: h.index, start: p, orig: { ...state.boxes[h.index] } };
    } else {
      state.boxes.push({ x0: p.x, y0: p.y, x1: p.x, y1: p.y });
      state.drag = { mode: 'new', index: state.boxes.length - 1 };
    }
    state.selected = state.drag.index;
    draw();
  });

  canvas.addEventListener('pointermove', (event) => {
    if (!state.image) return;
    const p = toImage(event);
    if (!state.drag) {
      const h = hit(p);
      canvas.style.cursor = h ? (h.corner ? (h.corner === 'nw' || h.corner === 'se' ? 'nwse-resize' : 'nesw-resize') : 'move') : 'crosshair';
      return;
    }
    const b = state.boxes[state.drag.index];
    if (state.drag.mode === 'new') {
      b.x1 = p.x;
      b.y1 = p.y;
    } else if (state.drag.mode === 'resize') {
      if (state.drag.corner.includes('w')) b.x0 = p.x; else b.x1 = p.x;
      if (state.drag.corner.includes('n')) b.y0 = p.y; else b.y1 = p.y;
    } else {
      const o = state.drag.orig;
      const dx = Math.min(Math.max(p.x - state.drag.start.x, -o.x0), canvas.width - o.x1);
      const dy = Math.min(Math.max(p.y - state.drag.start.y, -o.y0), canvas.height - o.y1);
      Object.assign(b, { x0: o.x0 + dx, y0: o.y0 + dy, x1: o.x1 + dx, y1: o.y1 + dy });
    }
    draw();
  });

  function endDrag() {
    if (!state.drag) return;
    const i = state.drag.index;
    const b = normalised(state.boxes[i]);
    const moved = state.drag.mode !== 'move' || b.x0 !== state.drag.orig.x0 || b.y0 !== state.drag.orig.y0;
    state.drag = null;
    if (b.x1 - b.x0 < MIN_BOX || b.y1 - b.y0 < MIN_BOX) {
      state.boxes.splice(i, 1);
      state.selected = -1;
    } else {
      state.boxes[i] = b;
      if (moved) scheduleRun();
    }
    updateButtons();
    draw();
  }
  canvas.addEventListener('pointerup', endDrag);
  canvas.addEventListener('pointercancel', endDrag);

  document.addEventListener('keydown', (event) => {
    if ((event.key === 'Delete' || event.key === 'Backspace') && state.selected >= 0 &&
        event.target === document.body) {
      state.boxes.splice(state.selected, 1);
      state.selected = -1;
      updateButtons();
      draw();
      scheduleRun();
      event.preventDefault();
    }
  });

  function draw() {
    if (!state.image) return;
    ctx.drawImage(state.image, 0, 0);
    const px = canvas.width / Math.max(canvas.getBoundingClientRect().width, 1);
    state.boxes.forEach((raw, i) => {
      const b = normalised(raw);
      const selected = i === state.selected;
      ctx.lineWidth = 2 * px;
      ctx.strokeStyle = 'rgba(0,0,0,0.6)';
      ctx.strokeRect(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0);
      ctx.setLineDash([6 * px, 4 * px]);
      ctx.strokeStyle = selected ? '#ffd400' : '#3df58a';
      ctx.strokeRect(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0);
      ctx.setLineDash([]);
      ctx.fillStyle = selected ? '#ffd400' : '#3df58a';
      const s = 6 * px;
      for (const [cx, cy] of [[b.x0, b.y0], [b.x1, b.y0], [b.x0, b.y1], [b.x1, b.y1]])
        ctx.fillRect(cx - s / 2, cy - s / 2, s, s);
      ctx.font = `${13 * px}px system-ui, sans-serif`;
      ctx.fillText(String(i + 1), b.x0 + 4 * px, b.y0 + 15 * px);
    });
  }
  window.addEventListener('resize', draw);

  function updateButtons() {
    $('run').disabled = !state.image || state.boxes.length === 0;
    $('clear').disabled = state.boxes.length === 0;
  }

  // ---- wiring ------------------------------------------------------------------------------

  $('file').addEventListener('change', (e) => openFile(e.target.files[0]));
  $('run').addEventListener('click', run);
  $('clear').addEventListener('click', () => {
    state.boxes = [];
    state.selected = -1;
    updateButtons();
    draw();
  });
  $('background').addEventListener('change', () => { if (!$('results').hidden) scheduleRun(); });

  const drop = $('drop');
  for (const type of ['dragenter', 'dragover'])
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add('over'); });
  for (const type of ['dragleave', 'drop'])
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.remove('over'); });
  drop.addEventListener('drop', (e) => openFile(e.dataTransfer.files[0]));
  // A file dropped outside the zone should not navigate away from the page.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => { e.preventDefault(); if (e.target !== drop) openFile(e.dataTransfer.files[0]); });

  fetch('/v1/info').then((r) => r.json()).then((info) => {
    document.title = `semat ${info.version}: interactive matting`;
    $('info').textContent = $('info').textContent || `method: ${info.method}${info.model ? ` (${info.model})` : ''}; images up to ${info.limits.max_upload_mb} MB`;
  }).catch(() => showError('Cannot reach the semat server.'));
})();
