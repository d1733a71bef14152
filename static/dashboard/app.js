// raftkv dashboard page: listens to the member's server-sent events (/dashboard/events) and
// redraws the members table, the charts (uPlot, served by the member) and the event list.
// Plain browser JavaScript, no build step; everything shown comes from the stream.
'use strict';

const $ = (sel) => document.querySelector(sel);
const state = { self: '', name: '', view: null, points: [], events: [] };
const names = new Map(); // member id (hex) -> name, remembered after a member leaves the table
const LEADER_EVENTS = new Set(['became-leader', 'new-leader']);

// ------------------------------------------------------------------ members table

const fmtBytes = (n) => {
  if (n === undefined || n === null) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${u[i]}`;
};
const show = (v) => (v === undefined || v === null ? '–' : String(v));

function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function renderView(v) {
  state.view = v;
  for (const m of v.members) if (m.name) names.set(m.id, m.name);
  const leader = v.members.find((m) => m.id === v.leader);
  $('#leader-name').textContent = leader ? (leader.name || leader.id) : v.leader ? v.leader : 'none';
  $('#term').textContent = show(v.term);
  $('#self-name').textContent = names.get(v.self) || state.name || v.self;
  const tbody = $('#members tbody');
  tbody.replaceChildren();
  for (const m of v.members) {
    const tr = document.createElement('tr');
    const isLeader = m.id === v.leader && m.reachable;
    tr.dataset.id = m.id;
    tr.dataset.name = m.name;
    tr.dataset.role = m.reachable ? (m.role || '') : 'unreachable';
    tr.dataset.reachable = String(m.reachable);
    if (isLeader) tr.classList.add('leader');
    if (!m.reachable) tr.classList.add('unreachable');
    const nameTd = cell(tr, m.name || '(not started)');
    if (m.self) {
      const tag = document.createElement('span');
      tag.className = 'self-tag';
      tag.textContent = '(this page)';
      nameTd.appendChild(tag);
    }
    cell(tr, m.id);
    const roleTd = document.createElement('td');
    const badge = document.createElement('span');
    const role = m.reachable ? m.role : m.role === 'learner' ? 'learner' : '';
    badge.className = `role ${role || ''}`;
    badge.textContent = isLeader ? '★ leader' : role || '–';
    roleTd.appendChild(badge);
    tr.appendChild(roleTd);
    cell(tr, show(m.term), 'num');
    cell(tr, show(m.commit), 'num');
    cell(tr, show(m.applied), 'num');
    cell(tr, show(m.lag), 'num');
    const r = cell(tr, m.reachable ? 'yes' : 'no', m.reachable ? 'yes' : 'no');
    if (m.error) r.title = m.error;
    cell(tr, fmtBytes(m.dbSize), 'num');
    tbody.appendChild(tr);
  }
  const alarms = $('#alarms');
  alarms.hidden = v.alarms.length === 0;
  alarms.textContent = v.alarms.map((a) => `ALARM ${a.alarm} raised by ${names.get(a.member) || a.member}`).join(' · ');
  renderEvents(); // names may have just become known
}

// ------------------------------------------------------------------ events list

const EVENT_TEXT = {
  'joined': 'joined the cluster',
  'joined-as-learner': 'joined as a learner',
  'promoted': 'was promoted to voter',
  'removed': 'was removed',
  'updated': 'changed its peer URLs',
  'became-leader': 'became leader',
  'new-leader': 'became leader',
  'leader-lost': 'lost leadership',
};

let eventsShown = '';

function renderEvents() {
  // Redrawn only when something changed (a redraw would reset the list's scroll position).
  const key = `${state.events.length}:${state.events.at(-1)?.at}:${[...names.values()].join()}`;
  if (key === eventsShown) return;
  eventsShown = key;
  const ol = $('#events');
  ol.replaceChildren();
  for (const e of state.events.slice(-30).reverse()) {
    const li = document.createElement('li');
    li.className = LEADER_EVENTS.has(e.kind) || e.kind === 'leader-lost' ? 'leaderish' : e.kind === 'removed' ? 'removed' : 'joined';
    const t = document.createElement('time');
    t.textContent = new Date(e.at).toLocaleTimeString();
    li.appendChild(t);
    const who = names.get(e.member) || e.member;
    li.appendChild(document.createTextNode(`${who} ${EVENT_TEXT[e.kind] || e.kind} (term ${e.term}${e.index ? `, index ${e.index}` : ''})`));
    ol.appendChild(li);
  }
}

// ------------------------------------------------------------------ charts

/** Draws a dashed vertical line at every leader change on a chart. */
function leaderMarks() {
  return {
    hooks: {
      draw: [(u) => {
        const { ctx } = u;
        const { left, top, width, height } = u.bbox;
        ctx.save();
        ctx.strokeStyle = '#e0457b';
        ctx.lineWidth = 1.5 * devicePixelRatio;
        ctx.setLineDash([5 * devicePixelRatio, 4 * devicePixelRatio]);
        for (const e of state.events) {
          if (!LEADER_EVENTS.has(e.kind)) continue;
          const x = u.valToPos(e.at / 1000, 'x', true);
          if (x < left || x > left + width) continue;
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
        }
        ctx.restore();
      }],
    },
  };
}

const axis = { stroke: '#8593a3', grid: { stroke: '#263140', width: 1 }, ticks: { stroke: '#263140' } };
const charts = [];

function makeChart(id, series) {
  const el = document.getElementById(id);
  const opts = {
    width: Math.max(300, el.clientWidth),
    height: 200,
    plugins: [leaderMarks()],
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max || 0, 1) * 1.1] } },
    // Clock times only (uPlot's default adds a date row, which overlaps at minute boundaries).
    axes: [{ ...axis, values: (u, splits) => splits.map((t) => new Date(t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })) }, { ...axis, size: 55 }],
    series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: false, value: (u, v) => (v === null || v === undefined ? '–' : v.toFixed(s.digits ?? 1)) }))],
  };
  const chart = { el, series, plot: new uPlot(opts, [[], ...series.map(() => [])], el) };
  charts.push(chart);
}

function redrawCharts() {
  const pts = state.points;
  const xs = pts.map((p) => p.t);
  for (const c of charts) c.plot.setData([xs, ...c.series.map((s) => pts.map((p) => p[s.key]))]);
}

function resizeCharts() {
  for (const c of charts) c.plot.setSize({ width: Math.max(300, c.el.clientWidth), height: 200 });
}

makeChart('chart-committed', [{ label: 'committed/s', key: 'committedPerSec', color: '#5aa9e6' }]);
makeChart('chart-reads', [{ label: 'reads/s', key: 'readsPerSec', color: '#4cc38a' }]);
makeChart('chart-put', [
  { label: 'p50', key: 'putP50', color: '#5aa9e6', digits: 2 },
  { label: 'p99', key: 'putP99', color: '#f2c14e', digits: 2 },
]);
makeChart('chart-disk', [
  { label: 'WAL fsync p99', key: 'fsyncP99', color: '#c792ea', digits: 2 },
  { label: 'event-loop delay p99', key: 'loopDelayP99', color: '#ef5b5b', digits: 2 },
]);
window.addEventListener('resize', resizeCharts);

// ------------------------------------------------------------------ the live stream

const MAX_POINTS = 600;

function setConnected(up) {
  const c = $('#conn');
  c.className = `conn ${up ? 'up' : 'down'}`;
  c.textContent = up ? 'live' : 'reconnecting…';
}

const es = new EventSource('events');
es.onopen = () => setConnected(true);
es.onerror = () => setConnected(false);
es.addEventListener('hello', (e) => {
  const d = JSON.parse(e.data);
  state.self = d.self;
  state.name = d.name;
  state.points = d.points;
  state.events = d.events;
  if (d.view) renderView(d.view);
  else $('#self-name').textContent = d.name;
  renderEvents();
  redrawCharts();
  setConnected(true);
});
es.addEventListener('view', (e) => renderView(JSON.parse(e.data)));
es.addEventListener('point', (e) => {
  state.points.push(JSON.parse(e.data));
  if (state.points.length > MAX_POINTS) state.points.splice(0, state.points.length - MAX_POINTS);
  redrawCharts();
});
es.addEventListener('cluster-event', (e) => {
  state.events.push(JSON.parse(e.data));
  if (state.events.length > 100) state.events.splice(0, state.events.length - 100);
  renderEvents();
  redrawCharts();
});
