#!/usr/bin/env node
// A Gleitzeit provider in plain Node.js (standard library only), written from sdk/PROTOCOL.md.
// Protocol text/v1: text/upper, text/wordcount, text/slow (progress, output, cancellation).
'use strict';

const PROTOCOL_VERSION = '1';
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const MAX_IN_FLIGHT = Number(process.env.TEXT_MAX_IN_FLIGHT || 4);
const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];
const METHOD_NAME = /^[a-z][a-z0-9_-]*\/[A-Za-z0-9_./-]+$/;

const E = {
  PARSE: -32700, INVALID_REQUEST: -32600, METHOD_NOT_FOUND: -32601, INVALID_PARAMS: -32602,
  INTERNAL: -32603, OVERLOADED: -32001, NOT_INITIALIZED: -32002, CANCELLED: -32800, TASK_FAILED: -32803,
};

// stdout is the wire: keep console.* off it.
for (const name of ['log', 'info', 'debug']) console[name] = console.error;

class RpcError extends Error {
  constructor(code, message, data) { super(message); this.code = code; this.data = data; }
}

// ---- methods -------------------------------------------------------------------------------

const METHODS = {
  'text/upper': {
    description: 'Upper-case a text.',
    paramsSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false },
    resultSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
    idempotent: true,
    run: async ({ text }) => ({ text: text.toUpperCase() }),
  },
  'text/wordcount': {
    description: 'Count the words, lines and characters of a text.',
    paramsSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false },
    resultSchema: {
      type: 'object',
      properties: { words: { type: 'integer' }, lines: { type: 'integer' }, chars: { type: 'integer' } },
      required: ['words', 'lines', 'chars'],
    },
    idempotent: true,
    run: async ({ text }) => ({
      words: text.split(/\s+/u).filter(Boolean).length,
      lines: text === '' ? 0 : text.split('\n').length,
      chars: [...text].length,
    }),
  },
  'text/slow': {
    description: 'Wait in steps, reporting progress and output; honours $/cancelRequest.',
    paramsSchema: {
      type: 'object',
      properties: { seconds: { type: 'number', minimum: 0, default: 5 }, steps: { type: 'integer', minimum: 1, default: 10 } },
      additionalProperties: false,
    },
    resultSchema: { type: 'object', properties: { slept: { type: 'number' } }, required: ['slept'] },
    idempotent: true,
    streaming: true,
    run: async ({ seconds = 5, steps = 10 }, ctx) => {
      await ctx.log('debug', `sleeping ${seconds} s in ${steps} steps`);
      for (let step = 1; step <= steps; step++) {
        await ctx.sleep((seconds * 1000) / steps);
        ctx.progress(step, steps, `step ${step} of ${steps}`);
        ctx.output('stdout', `step ${step}\n`);
      }
      return { slept: seconds };
    },
  },
};

// The subset of JSON Schema the methods above use; messages name the parameter.
function checkParams(schema, params) {
  for (const name of schema.required || []) {
    if (!(name in params)) return `missing required parameter '${name}'`;
  }
  for (const [name, value] of Object.entries(params)) {
    const prop = (schema.properties || {})[name];
    if (!prop) {
      if (schema.additionalProperties === false) return `unexpected parameter '${name}'`;
      continue;
    }
    const ok = {
      string: typeof value === 'string',
      number: typeof value === 'number',
      integer: Number.isInteger(value),
      boolean: typeof value === 'boolean',
    }[prop.type];
    if (!ok) return `parameter '${name}' must be of type ${prop.type}`;
    if (prop.minimum !== undefined && value < prop.minimum) return `parameter '${name}' must be >= ${prop.minimum}`;
  }
  return null;
}

// ---- connection state ----------------------------------------------------------------------

let phase = 'awaiting-initialize'; // -> awaiting-initialized -> ready -> shut-down
let logLevel = 'info';
let hostMaxBytes = MAX_MESSAGE_BYTES;
const inFlight = new Map(); // JSON.stringify(id) -> { abort: AbortController, done: boolean }
const startedAt = Date.now();

function send(message) {
  let line = JSON.stringify(message);
  if (Buffer.byteLength(line) > hostMaxBytes) {
    if (!('id' in message)) return; // drop an oversized notification
    const text = `response exceeds the host's maxMessageBytes (${hostMaxBytes})`;
    line = JSON.stringify(errorMessage(message.id, new RpcError(E.INTERNAL, text, { type: 'MessageTooLarge', message: text, retryable: false })));
  }
  process.stdout.write(line + '\n');
}

function errorMessage(id, err) {
  const error = { code: err.code, message: err.message };
  if (err.data !== undefined) error.data = err.data;
  return { jsonrpc: '2.0', id, error };
}

const reply = (id, result) => send({ jsonrpc: '2.0', id, result });
const fail = (id, code, message, data) => send(errorMessage(id, new RpcError(code, message, data)));
const notify = (method, params) => send({ jsonrpc: '2.0', method, params });

function initializeResult() {
  return {
    protocolVersion: PROTOCOL_VERSION,
    provider: { name: 'text', version: '1.0.0' },
    protocols: ['text/v1'],
    capabilities: { cancellation: true, progress: true, output: true, logging: true, concurrency: { maxInFlight: MAX_IN_FLIGHT } },
    limits: { maxMessageBytes: MAX_MESSAGE_BYTES },
    methods: Object.entries(METHODS).map(([name, m]) => ({
      name,
      description: m.description,
      paramsSchema: m.paramsSchema,
      resultSchema: m.resultSchema,
      codeParams: {},
      idempotent: m.idempotent,
      defaultTimeoutSec: null,
      streaming: Boolean(m.streaming),
    })),
  };
}

// ---- dispatch ------------------------------------------------------------------------------

function onLine(buffer) {
  let text;
  let message;
  try {
    // ignoreBOM keeps a byte-order mark in the text, so JSON.parse refuses the line (PROTOCOL.md §1)
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buffer);
  } catch {
    return fail(null, E.PARSE, 'line is not valid UTF-8');
  }
  if (!text.trim()) return; // blank lines are ignored
  try {
    message = JSON.parse(text);
  } catch (err) {
    return fail(null, E.PARSE, `line is not JSON (${err.message})`);
  }
  if (Array.isArray(message)) return fail(null, E.INVALID_REQUEST, 'batches are not supported by protocol v1');
  if (message === null || typeof message !== 'object') return fail(null, E.INVALID_REQUEST, 'a message must be a JSON object');
  const hasId = 'id' in message;
  const id = message.id;
  // null ids are invalid in v1; a string id must be well-formed Unicode, or we could not echo it
  if (hasId && !((typeof id === 'string' && id.isWellFormed()) || Number.isInteger(id))) {
    return fail(null, E.INVALID_REQUEST, 'id must be a string or an integer');
  }
  if (message.jsonrpc !== '2.0') return fail(hasId ? id : null, E.INVALID_REQUEST, 'jsonrpc must be exactly "2.0"');
  if (!('method' in message)) {
    if ('result' in message || 'error' in message) return; // providers send no requests, so no responses are expected
    return fail(hasId ? id : null, E.INVALID_REQUEST, 'a request needs a method');
  }
  if (typeof message.method !== 'string') return fail(hasId ? id : null, E.INVALID_REQUEST, 'method must be a string');
  const params = message.params;
  if ('params' in message && (params === null || typeof params !== 'object')) {
    return fail(hasId ? id : null, E.INVALID_REQUEST, 'params must be an object or an array');
  }
  if (!hasId) return onNotification(message.method, params);
  return onRequest(id, message.method, params);
}

function onNotification(method, params) {
  if (method === 'initialized' && phase === 'awaiting-initialized') phase = 'ready';
  if (method === '$/cancelRequest' && params && !Array.isArray(params)) {
    const entry = inFlight.get(JSON.stringify(params.id));
    if (entry) entry.abort.abort();
  }
  // anything else: ignored, never answered
}

function onRequest(id, method, params) {
  if (phase === 'shut-down') return fail(id, E.INVALID_REQUEST, `${method}: the provider is shut down`);
  if (method === 'initialize') return initialize(id, params || {});
  if (method === 'ping') return reply(id, {});
  if (phase !== 'ready') return fail(id, E.NOT_INITIALIZED, `${method}: not initialized (send initialize, then initialized)`);
  if (method === 'shutdown') { phase = 'shut-down'; return reply(id, null); }
  if (method === 'health') {
    return reply(id, { status: 'ok', inFlight: inFlight.size, maxInFlight: MAX_IN_FLIGHT, uptimeSec: (Date.now() - startedAt) / 1000 });
  }
  const spec = METHODS[method];
  if (!spec) return fail(id, E.METHOD_NOT_FOUND, `method not found: ${method}`);
  if (inFlight.has(JSON.stringify(id))) return fail(id, E.INVALID_REQUEST, `${method}: id already in flight`);
  if (inFlight.size >= MAX_IN_FLIGHT) {
    return fail(id, E.OVERLOADED, `${method}: overloaded, ${MAX_IN_FLIGHT} requests already in flight`, {
      type: 'Overloaded', message: 'too many requests in flight', retryable: true, maxInFlight: MAX_IN_FLIGHT,
    });
  }
  if (params !== undefined && Array.isArray(params)) return fail(id, E.INVALID_PARAMS, `invalid params for ${method}: params must be an object`);
  const { _meta: meta = {}, ...args } = params || {};
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) {
    return fail(id, E.INVALID_PARAMS, `invalid params for ${method}: _meta must be an object`);
  }
  const problem = checkParams(spec.paramsSchema, args);
  if (problem) return fail(id, E.INVALID_PARAMS, `invalid params for ${method}: ${problem}`);
  runTask(id, method, spec, args, meta);
}

function initialize(id, params) {
  if (phase !== 'awaiting-initialize') return fail(id, E.INVALID_REQUEST, 'initialize: already initialized');
  if (params.protocolVersion !== PROTOCOL_VERSION) {
    return fail(id, E.INVALID_PARAMS, `initialize: unsupported protocolVersion ${JSON.stringify(params.protocolVersion)}`, {
      supported: [PROTOCOL_VERSION], requested: params.protocolVersion === undefined ? null : params.protocolVersion,
    });
  }
  if (params.logLevel !== undefined) {
    if (!LOG_LEVELS.includes(params.logLevel)) return fail(id, E.INVALID_PARAMS, `initialize: logLevel must be one of ${LOG_LEVELS.join(', ')}`);
    logLevel = params.logLevel;
  }
  const hostMax = params.limits && params.limits.maxMessageBytes;
  if (Number.isInteger(hostMax) && hostMax >= 1024) hostMaxBytes = hostMax;
  phase = 'awaiting-initialized';
  reply(id, initializeResult());
}

async function runTask(id, method, spec, args, meta) {
  const key = JSON.stringify(id);
  const entry = { abort: new AbortController(), done: false };
  inFlight.set(key, entry);
  const token = meta.progressToken;
  let lastProgress = -Infinity;
  let seq = 0;
  const ctx = {
    meta,
    progress(progress, total, message) {
      if (token === undefined || entry.done || progress <= lastProgress) return;
      lastProgress = progress;
      notify('$/progress', { token, progress, ...(total !== undefined && { total }), ...(message !== undefined && { message }) });
    },
    output(stream, data) {
      if (token === undefined || entry.done) return;
      notify('$/output', { token, seq: seq++, stream, data });
    },
    async log(level, message) {
      if (LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(logLevel)) notify('$/log', { level, message, logger: 'text', requestId: id });
    },
    sleep(ms) {
      return new Promise((resolve, reject) => {
        const signal = entry.abort.signal;
        if (signal.aborted) return reject(new RpcError(E.CANCELLED, `${method}: request cancelled`));
        const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, ms);
        const onAbort = () => { clearTimeout(timer); reject(new RpcError(E.CANCELLED, `${method}: request cancelled`)); };
        signal.addEventListener('abort', onAbort, { once: true });
      });
    },
  };
  let outcome;
  try {
    outcome = { result: await spec.run(args, ctx) };
  } catch (err) {
    outcome = { error: toRpcError(err) };
  }
  // Exactly one final response: whatever finished first, result or cancellation.
  entry.done = true;
  inFlight.delete(key);
  if ('result' in outcome) reply(id, outcome.result === undefined ? null : outcome.result);
  else send(errorMessage(id, outcome.error));
}

function toRpcError(err) {
  if (err instanceof RpcError) {
    if (err.code === E.CANCELLED && err.data === undefined) err.data = { type: 'Cancelled', message: 'request cancelled', retryable: false };
    return err;
  }
  console.error(err);
  const type = (err && err.name) || 'Error';
  const message = String((err && err.message) || err);
  return new RpcError(E.INTERNAL, `${type}: ${message}`, { type, message, retryable: true });
}

// ---- framing: NDJSON on stdin, with the 16 MiB cap -------------------------------------------------

let chunks = [];
let buffered = 0;
let discarding = false; // inside an oversized line: drop bytes up to the next newline

process.stdin.on('data', (data) => {
  let start = 0;
  for (let nl = data.indexOf(10); nl !== -1; nl = data.indexOf(10, start)) {
    const piece = data.subarray(start, nl);
    start = nl + 1;
    if (discarding) { discarding = false; continue; }
    let line = chunks.length ? Buffer.concat([...chunks, piece]) : piece;
    chunks = []; buffered = 0;
    if (line.length > MAX_MESSAGE_BYTES) { refuseOversized(); continue; }
    if (line.length && line[line.length - 1] === 13) line = line.subarray(0, line.length - 1);
    onLine(line);
  }
  if (start < data.length && !discarding) {
    chunks.push(data.subarray(start));
    buffered += data.length - start;
    if (buffered > MAX_MESSAGE_BYTES) { chunks = []; buffered = 0; discarding = true; refuseOversized(); }
  }
});

function refuseOversized() {
  fail(null, E.INVALID_REQUEST, `message longer than the ${MAX_MESSAGE_BYTES}-byte limit; message dropped`, { maxMessageBytes: MAX_MESSAGE_BYTES });
}

// stdin EOF: cancel what runs (each still gets its one -32800), then exit 0.
process.stdin.on('end', () => {
  for (const entry of inFlight.values()) entry.abort.abort();
  setImmediate(() => process.exit(0));
});

if (Object.keys(METHODS).some((name) => !METHOD_NAME.test(name))) throw new Error('bad method name');
