// The dashboard: one EventSource on /api/stats/stream (a snapshot a second),
// charts of the last five minutes drawn with uPlot, and the session, destination
// and node tables. The token comes from ?token=, this tab's storage, or the form.
(() => {
  'use strict';
  const KEEP = 300; // seconds of history in the charts
  const $ = (id) => document.getElementById(id);
  const dashboard = { state: 'idle', snapshots: 0, last: null, closed: [] };
  window.dashboard = dashboard;

  const series = { time: [], connections: [], messages: [], deliveries: [], queued: [], cuts: [] };
  let charts = null;
  let source = null;
  let previous = null;

  function setStatus(state, text) {
    dashboard.state = state;
    $('status').dataset.state = state;
    $('status').textContent = text;
  }

  function token() {
    return $('token').value.trim();
  }

  function withToken(path) {
    const value = token();
    return value ? `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(value)}` : path;
  }

  function number(value) {
    return Number.isFinite(value) ? Math.round(value).toLocaleString('en') : '-';
  }

  function bytes(value) {
    if (!Number.isFinite(value)) return '-';
    const units = ['B', 'KiB', 'MiB', 'GiB'];
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
  }

  // `scales` names each series' y scale; a second scale gets its own axis on
  // the right (bytes and a count do not share one).
  function chart(id, labels, colors, scales = labels.map(() => 'y')) {
    const element = $(id);
    const axes = [{}, { scale: scales[0], size: 60 }];
    if (scales.some((scale) => scale !== scales[0])) {
      axes.push({ scale: scales.find((scale) => scale !== scales[0]), side: 1, size: 40, grid: { show: false } });
    }
    const options = {
      width: Math.max(element.clientWidth, 280),
      height: 200,
      series: [{}, ...labels.map((label, i) => ({ label, stroke: colors[i], width: 2, scale: scales[i] }))],
      axes,
      scales: { x: { time: true } },
    };
    return new uPlot(options, [[], ...labels.map(() => [])], element);
  }

  function makeCharts() {
    charts = {
      connections: chart('chart-connections', ['connections'], ['#3465a4']),
      rates: chart('chart-rates', ['messages/s', 'deliveries/s'], ['#73a240', '#c4a000']),
      queues: chart('chart-queues', ['queued bytes', 'cuts'], ['#75507b', '#cc0000'], ['bytes', 'cuts']),
    };
    window.addEventListener('resize', () => {
      for (const plot of Object.values(charts)) {
        const element = plot.root.parentElement;
        plot.setSize({ width: Math.max(element.clientWidth, 280), height: 200 });
      }
    });
  }

  function push(key, value) {
    series[key].push(value);
    if (series[key].length > KEEP) series[key].shift();
  }

  function cell(row, text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function fillTable(id, rows, build) {
    const body = $(id);
    body.replaceChildren(...rows.map((item) => {
      const row = document.createElement('tr');
      build(row, item);
      return row;
    }));
  }

  async function closeSession(id, button) {
    button.disabled = true;
    const headers = token() ? { Authorization: `Bearer ${token()}` } : {};
    const response = await fetch(`/api/sessions/${encodeURIComponent(id)}`, { method: 'DELETE', headers });
    const answer = await response.json().catch(() => ({}));
    dashboard.closed.push({ id, status: response.status });
    button.textContent = response.ok ? 'closed' : `refused (${response.status})`;
    if (!response.ok) setStatus('live', `close refused: ${answer.error ?? response.status}`);
  }

  function show(snapshot) {
    dashboard.snapshots += 1;
    dashboard.last = snapshot;
    const seconds = previous ? (snapshot.time_ms - previous.time_ms) / 1000 : 0;
    const rate = (key) => (previous && seconds > 0 ? Math.max(0, snapshot[key] - previous[key]) / seconds : 0);
    const messages = rate('messages_in');
    const deliveries = rate('deliveries');
    previous = snapshot;

    push('time', snapshot.time_ms / 1000);
    push('connections', snapshot.connections);
    push('messages', messages);
    push('deliveries', deliveries);
    push('queued', snapshot.queued_bytes);
    push('cuts', snapshot.slow_consumer_cuts);
    if (!charts) makeCharts();
    charts.connections.setData([series.time, series.connections]);
    charts.rates.setData([series.time, series.messages, series.deliveries]);
    charts.queues.setData([series.time, series.queued, series.cuts]);

    $('connections').textContent = number(snapshot.connections);
    $('sessions').textContent = number(snapshot.sessions);
    $('subscriptions').textContent = number(snapshot.subscriptions);
    $('messages-rate').textContent = number(messages);
    $('deliveries-rate').textContent = number(deliveries);
    $('deliveries').textContent = number(snapshot.deliveries);
    $('queued').textContent = bytes(snapshot.queued_bytes);
    $('cuts').textContent = number(snapshot.slow_consumer_cuts);
    $('refusals').textContent = number(snapshot.refusals);

    const listed = snapshot.session_list.length;
    $('sessions-note').textContent = listed < snapshot.sessions_total ? `(the first ${listed} of ${snapshot.sessions_total})` : '';
    fillTable('session-rows', snapshot.session_list, (row, session) => {
      row.dataset.session = session.id;
      const transport = session.attributes.sockjs_transport
        ? `${session.attributes.transport}/${session.attributes.sockjs_transport}`
        : session.attributes.transport ?? '';
      cell(row, session.id);
      cell(row, transport);
      cell(row, session.user ?? '');
      cell(row, session.remote ?? '');
      cell(row, String(session.subscriptions.length), 'number');
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = 'close';
      button.addEventListener('click', () => closeSession(session.id, button));
      cell(row, '').appendChild(button);
    });
    fillTable('destination-rows', snapshot.destinations, (row, item) => {
      cell(row, item.destination);
      cell(row, number(item.subscribers), 'number');
    });
    $('cluster').hidden = snapshot.nodes.length === 0;
    fillTable('node-rows', snapshot.nodes, (row, node) => {
      cell(row, node.node);
      cell(row, number(node.connections), 'number');
      cell(row, number(node.sessions), 'number');
      cell(row, number(node.messages_in), 'number');
      cell(row, number(node.deliveries), 'number');
      cell(row, new Date(node.updated_ms).toLocaleTimeString());
    });
  }

  async function open() {
    if (source) source.close();
    sessionStorage.setItem('stomphub-token', token());
    // An EventSource hides the status of a refusal: ask once with fetch.
    const probe = await fetch(withToken('/api/stats'));
    if (probe.status === 401) {
      setStatus('refused', 'refused: this broker needs its [api] token or read_token');
      return;
    }
    if (!probe.ok) {
      setStatus('error', `the broker answered ${probe.status}`);
      return;
    }
    source = new EventSource(withToken('/api/stats/stream'));
    source.onopen = () => setStatus('live', 'live');
    source.onmessage = (event) => show(JSON.parse(event.data));
    source.onerror = () => setStatus('error', 'stream interrupted; reconnecting');
  }

  $('login').addEventListener('submit', (event) => {
    event.preventDefault();
    open();
  });
  $('token').value = new URLSearchParams(location.search).get('token') ?? sessionStorage.getItem('stomphub-token') ?? '';
  open();
})();
