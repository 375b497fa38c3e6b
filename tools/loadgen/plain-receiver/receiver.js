'use strict';
/*
 * receiver.js: a plain durable webhook receiver, the baseline bench.d/10-ingest.sh measures
 * wa-ingest against. Per POST /webhook it does the same durable work as wa-ingest: checks
 * X-Hub-Signature-256 (HMAC-SHA-256 of the body, constant-time compare), claims each
 * message/status id with one Redis SET NX PX, publishes the raw body and one record per new
 * event to Kafka with acks=all and an idempotent producer, and answers 200 only after both.
 * No spool, metrics, tracing or archive encoding: what a small hand-written receiver does.
 *
 * Environment: PLAIN_LISTEN (host:port), PLAIN_SECRET, PLAIN_TOPIC_PREFIX, PLAIN_DEDUP_TTL_MS,
 * WA_KAFKA_BROKERS, WA_REDIS_URL.
 */
const http = require('http');
const crypto = require('crypto');
const Redis = require('ioredis');
const { Kafka, logLevel } = require('kafkajs');

const [host, port] = (process.env.PLAIN_LISTEN || '127.0.0.1:18182').split(':');
const secret = process.env.PLAIN_SECRET || 'bench-secret';
const prefix = process.env.PLAIN_TOPIC_PREFIX || 'plain.';
const ttl = Number(process.env.PLAIN_DEDUP_TTL_MS || 600000);
const brokers = (process.env.WA_KAFKA_BROKERS || '127.0.0.1:9092').split(',');
const redis = new Redis(process.env.WA_REDIS_URL || 'redis://127.0.0.1:6379/0');
const kafka = new Kafka({ clientId: 'wa-plain-receiver', brokers, logLevel: logLevel.WARN });
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
const topics = {
    raw: prefix + 'webhook.raw',
    message: prefix + 'inbound.message',
    status: prefix + 'inbound.status',
};

function verify(body, header) {
    if (typeof header !== 'string' || !header.startsWith('sha256=') || header.length !== 71) {
        return false;
    }
    const want = crypto.createHmac('sha256', secret).update(body).digest();
    const got = Buffer.from(header.slice(7), 'hex');
    return got.length === want.length && crypto.timingSafeEqual(got, want);
}

/* The events of a webhook: [dedup id, topic, key, value] for each message and status. */
function events(doc) {
    const out = [];
    for (const entry of doc.entry || []) {
        for (const change of entry.changes || []) {
            const v = change.value || {};
            for (const m of v.messages || []) {
                out.push(['m:' + m.id, topics.message, m.from, JSON.stringify(m)]);
            }
            for (const s of v.statuses || []) {
                out.push([`s:${s.id}:${s.status}`, topics.status, s.recipient_id, JSON.stringify(s)]);
            }
        }
    }
    return out;
}

/*
 * An idempotent kafkajs producer sends one request at a time: records of webhooks that arrive
 * while a request is in flight go together in the next one (no timer, no linger).
 */
let pending = [];
let inFlight = false;

function publish(messages) {
    return new Promise((resolve, reject) => {
        pending.push({ messages, resolve, reject });
        if (!inFlight) {
            flush();
        }
    });
}

function flush() {
    const batch = pending;
    pending = [];
    inFlight = true;
    const byTopic = {};
    for (const p of batch) {
        for (const topic of Object.keys(p.messages)) {
            (byTopic[topic] = byTopic[topic] || []).push(...p.messages[topic]);
        }
    }
    const topicMessages = Object.keys(byTopic).map((topic) => ({ topic, messages: byTopic[topic] }));
    producer.sendBatch({ acks: -1, topicMessages }).then(
        () => batch.forEach((p) => p.resolve()),
        (e) => batch.forEach((p) => p.reject(e))).finally(() => {
        inFlight = false;
        if (pending.length > 0) {
            flush();
        }
    });
}

async function handle(body, req, res) {
    if (!verify(body, req.headers['x-hub-signature-256'])) {
        res.writeHead(401).end();
        return;
    }
    let doc;
    try {
        doc = JSON.parse(body);
    } catch (e) {
        res.writeHead(400).end();
        return;
    }
    const evs = events(doc);
    const claims = await Promise.all(
        evs.map((ev) => redis.set('plain:dedup:' + ev[0], '1', 'PX', ttl, 'NX')));
    const messages = {};
    messages[topics.raw] = [{ value: body }];
    evs.forEach((ev, i) => {
        if (claims[i] === 'OK') {
            (messages[ev[1]] = messages[ev[1]] || []).push({ key: ev[2], value: ev[3] });
        }
    });
    await publish(messages);
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ok"}');
}

const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/readyz') {
        res.writeHead(200).end('ok');
        return;
    }
    if (req.method !== 'POST' || req.url !== '/webhook') {
        res.writeHead(404).end();
        return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
        handle(Buffer.concat(chunks), req, res).catch((e) => {
            console.error('webhook failed:', e.message);
            res.writeHead(503).end();
        });
    });
});
server.keepAliveTimeout = 120000;

producer.connect().then(() => {
    server.listen(Number(port), host, () => console.log(`plain receiver on ${host}:${port}`));
}, (e) => {
    console.error('kafka connect failed:', e.message);
    process.exit(1);
});
process.on('SIGTERM', () => {
    server.close();
    Promise.allSettled([producer.disconnect(), redis.quit()]).then(() => process.exit(0));
});
