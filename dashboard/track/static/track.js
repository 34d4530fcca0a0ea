// The customer's tracking page: refreshes itself from /t/{token}/status every ~15 s.
// Every value goes in with textContent or as a number; nothing from the server is markup.

const main = document.getElementById('track');
const lang = document.documentElement.lang || 'en';
const statusUrl = `${location.pathname.replace(/\/+$/, '')}/status`;
const refreshMs = 1000 * Number(main?.dataset.refreshS || 15);

const dayTime = new Intl.DateTimeFormat(lang, {
  weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
});
const timeOnly = new Intl.DateTimeFormat(lang, { hour: '2-digit', minute: '2-digit' });

function fmt(iso) {
  return iso ? dayTime.format(new Date(iso)) : '';
}

function sameDay(a, b) {
  return a.toDateString() === b.toDateString();
}

function fmtRange(start, end) {
  if (start && end) {
    const a = new Date(start);
    const b = new Date(end);
    return sameDay(a, b) ? `${dayTime.format(a)} – ${timeOnly.format(b)}` : `${fmt(start)} – ${fmt(end)}`;
  }
  return fmt(start || end);
}

function setTime(el, iso) {
  if (!el) return;
  if (iso) el.setAttribute('datetime', iso);
  else el.removeAttribute('datetime');
  el.textContent = fmt(iso);
}

function renderTimeline(status) {
  const steps = status.timeline.map((s) => s.step);
  const current = Math.max(0, steps.indexOf(status.state));
  for (const li of document.querySelectorAll('#timeline li[data-step]')) {
    const index = steps.indexOf(li.dataset.step);
    li.hidden = index < 0;
    li.classList.toggle('done', index >= 0 && index < current);
    li.classList.toggle('current', index === current);
    setTime(li.querySelector('time'), index >= 0 ? status.timeline[index].at : null);
  }
  const label = document.querySelector(`#timeline li[data-step="${status.state}"] .step-label`);
  if (label) document.getElementById('state-text').textContent = label.textContent;
  main.dataset.state = status.state;
}

function renderWhen(status) {
  const text = document.getElementById('when-text');
  document.getElementById('when-eta').hidden = !status.eta;
  document.getElementById('when-window').hidden = Boolean(status.eta);
  if (status.eta) text.textContent = fmtRange(status.eta.earliest, status.eta.latest);
  else if (status.window) text.textContent = fmtRange(status.window.start, status.window.end);
  else text.textContent = text.dataset.none;
}

let map = null;
let marker = null;

function renderVehicle(vehicle) {
  const section = document.getElementById('map-section');
  main.dataset.vehicle = vehicle ? 'shown' : 'none';
  section.hidden = !vehicle;
  if (!vehicle || typeof window.L === 'undefined') return;
  const at = [vehicle.lat, vehicle.lon];
  if (!map) {
    const el = document.getElementById('map');
    map = window.L.map(el, { zoomControl: true, attributionControl: true }).setView(at, 14);
    if (el.dataset.tileUrl) {
      window.L.tileLayer(el.dataset.tileUrl, {
        maxZoom: 19, attribution: el.dataset.attribution || '',
      }).addTo(map);
    }
    marker = window.L.circleMarker(at, {
      radius: 9, weight: 3, color: '#fff', fillColor: '#1565c0', fillOpacity: 1,
      className: 'vehicle-marker',
    }).addTo(map);
  } else {
    marker.setLatLng(at);
    map.invalidateSize();
    if (!map.getBounds().pad(-0.2).contains(at)) map.panTo(at);
  }
  setTime(document.getElementById('vehicle-at'), vehicle.at);
}

function render(status) {
  document.getElementById('order-number').textContent = status.order_number;
  document.getElementById('delay').hidden = !status.delayed;
  renderTimeline(status);
  renderWhen(status);
  renderVehicle(status.vehicle);
  const expires = document.getElementById('expires');
  expires.hidden = !status.expires_at;
  setTime(expires.querySelector('time'), status.expires_at);
  setTime(document.getElementById('updated'), new Date().toISOString());
  main.dataset.rendered = String(Number(main.dataset.rendered || 0) + 1);
}

async function refresh() {
  try {
    const response = await fetch(statusUrl, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (response.status === 404) {
      location.reload(); // the link stopped working: show the server's page for that
      return;
    }
    if (response.ok) render(await response.json());
  } catch (err) {
    // Offline for a moment: keep what is shown and try again at the next tick.
  }
  setTimeout(refresh, refreshMs);
}

if (main) refresh();
