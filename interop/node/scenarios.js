// The scenarios with the Node.js client amqplib (promise API).
//
// Run as `node scenarios.js --url URL --prefix PREFIX SCENARIO...`; prints one
// `INTEROP-RESULT {"scenario", "ok", "detail"}` line per scenario, or with --list the names it implements.

const assert = require('node:assert/strict');
const { setTimeout: sleep } = require('node:timers/promises');
const amqp = require('amqplib');

// The numbers every client shares; keep them in step with interop/scenarios.py.
const ROUTING_BINDINGS = { a: { direct: 'red', topic: 'stock.*.nyse' }, b: { direct: 'green', topic: 'stock.#' } };
const ROUTING_PUBLISHES = [
  ['direct', 'red', 'direct-red'],
  ['direct', 'green', 'direct-green'],
  ['direct', 'blue', 'direct-blue'],
  ['fanout', '', 'fanout'],
  ['topic', 'stock.ibm.nyse', 'topic-nyse'],
  ['topic', 'stock.ibm', 'topic-ibm'],
  ['default', 'a', 'default'],
];
const ROUTING_EXPECTED = {
  a: ['direct-red', 'fanout', 'topic-nyse', 'default'],
  b: ['direct-green', 'fanout', 'topic-nyse', 'topic-ibm'],
};
const ACK_MESSAGES = 3;
const PREFETCH_COUNT = 2;
const PREFETCH_MESSAGES = 5;
const CONFIRMED_MESSAGES = 10;
const LARGE_MESSAGE_SIZE = 5 * 1024 * 1024;
const CHANNELS = 100;
const HEARTBEAT = 2;
const IDLE = 8;
const PATIENCE = 10;
const QUIET = 0.5;

const range = (n) => [...Array(n).keys()];
const ignore = () => {};

function largeBody() {
  const body = Buffer.alloc(LARGE_MESSAGE_SIZE);
  for (let i = 0; i < body.length; i++) body[i] = i % 251;
  return body;
}

function wrongPassword(url) {
  const parsed = new URL(url);
  parsed.password = `wrong-${parsed.username}`;
  return parsed.toString();
}

async function waitFor(done, what) {
  const deadline = Date.now() + PATIENCE * 1000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${PATIENCE} s`);
    await sleep(10);
  }
}

// basic.get, retried while the queue is still empty.
async function get(channel, queue, options = {}) {
  const deadline = Date.now() + PATIENCE * 1000;
  for (;;) {
    const message = await channel.get(queue, options);
    if (message) return message;
    if (Date.now() > deadline) throw new Error(`no message on ${queue} within ${PATIENCE} s`);
    await sleep(10);
  }
}

async function withConnection(url, use) {
  const connection = await amqp.connect(url);
  try {
    await use(connection);
  } finally {
    await connection.close().catch(ignore);
  }
}

async function messageCount(connection, queue) {
  const channel = await connection.createChannel();
  return (await channel.checkQueue(queue)).messageCount;
}

async function connect(url) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    await channel.close();
  });
}

async function auth_refused(url) {
  let connection;
  try {
    connection = await amqp.connect(wrongPassword(url));
  } catch (error) {
    assert.match(error.message, /403/);
    return;
  }
  await connection.close();
  assert.fail('a wrong password was accepted');
}

async function routing(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    for (const kind of ['direct', 'fanout', 'topic']) {
      await channel.assertExchange(names(kind), kind, { autoDelete: true });
    }
    for (const [queue, keys] of Object.entries(ROUTING_BINDINGS)) {
      await channel.assertQueue(names(queue), { exclusive: true });
      await channel.bindQueue(names(queue), names('fanout'), '');
      for (const [kind, key] of Object.entries(keys)) await channel.bindQueue(names(queue), names(kind), key);
    }
    for (const [kind, key, body] of ROUTING_PUBLISHES) {
      if (kind === 'default') channel.sendToQueue(names(key), Buffer.from(body));
      else channel.publish(names(kind), key, Buffer.from(body));
    }
    for (const [queue, expected] of Object.entries(ROUTING_EXPECTED)) {
      const bodies = [];
      for (const _ of expected) bodies.push((await get(channel, names(queue), { noAck: true })).content.toString());
      assert.deepEqual(bodies, expected, `messages on queue ${queue}`);
      assert.equal(await channel.get(names(queue), { noAck: true }), false, `message left on queue ${queue}`);
    }
  });
}

async function ack(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue(names('q'), { exclusive: true });
    for (const n of range(ACK_MESSAGES)) channel.sendToQueue(queue, Buffer.from(`m${n}`));
    const bodies = [];
    await channel.consume(queue, (message) => {
      bodies.push(message.content.toString());
      channel.ack(message);
    });
    await waitFor(() => bodies.length === ACK_MESSAGES, 'deliveries');
    assert.deepEqual(bodies, range(ACK_MESSAGES).map((n) => `m${n}`), 'consumed');
    await channel.close();
    assert.equal(await messageCount(connection, queue), 0, 'messages requeued after channel close');
  });
}

async function requeue(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue(names('q'), { exclusive: true });
    channel.sendToQueue(queue, Buffer.from('again'));
    const delivery = (message) => [message.content.toString(), message.fields.redelivered];
    let message = await get(channel, queue);
    assert.deepEqual(delivery(message), ['again', false], 'first delivery');
    channel.reject(message, true);
    message = await get(channel, queue);
    assert.deepEqual(delivery(message), ['again', true], 'delivery after reject');
    channel.nack(message, false, true);
    message = await get(channel, queue);
    assert.deepEqual(delivery(message), ['again', true], 'delivery after nack');
    channel.ack(message);
    assert.equal(await channel.get(queue), false, 'basic.get after ack');
  });
}

async function discard(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue(names('q'), { exclusive: true });
    channel.sendToQueue(queue, Buffer.from('rejected'));
    channel.sendToQueue(queue, Buffer.from('nacked'));
    channel.reject(await get(channel, queue), false);
    channel.nack(await get(channel, queue), false, false);
    await channel.close();
    assert.equal(await messageCount(connection, queue), 0, 'messages left');
  });
}

async function prefetch(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue(names('q'), { exclusive: true });
    for (const n of range(PREFETCH_MESSAGES)) channel.sendToQueue(queue, Buffer.from(`m${n}`));
    await channel.prefetch(PREFETCH_COUNT);
    const held = [];
    await channel.consume(queue, (message) => held.push(message));
    await waitFor(() => held.length >= PREFETCH_COUNT, 'deliveries');
    await sleep(QUIET * 1000);
    assert.equal(held.length, PREFETCH_COUNT, 'deliveries before any ack');
    channel.ack(held[0]);
    await waitFor(() => held.length > PREFETCH_COUNT, 'delivery after an ack');
    await sleep(QUIET * 1000);
    assert.equal(held.length, PREFETCH_COUNT + 1, 'deliveries after one ack');
    while (held.length < PREFETCH_MESSAGES) {
      const count = held.length;
      channel.ack(held[count - PREFETCH_COUNT]);
      await waitFor(() => held.length > count, 'delivery');
    }
    const bodies = held.map((message) => message.content.toString());
    assert.deepEqual(bodies, range(PREFETCH_MESSAGES).map((n) => `m${n}`), 'delivered');
  });
}

async function confirms(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createConfirmChannel();
    const { queue } = await channel.assertQueue(names('q'), { exclusive: true });
    for (const n of range(CONFIRMED_MESSAGES)) channel.sendToQueue(queue, Buffer.from(`m${n}`));
    await channel.waitForConfirms(); // rejects if any publish was nacked
    assert.equal((await channel.checkQueue(queue)).messageCount, CONFIRMED_MESSAGES, 'messages in queue');
  });
}

async function mandatory(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    const returned = [];
    channel.on('return', (message) => returned.push(message));
    channel.sendToQueue(names('nowhere'), Buffer.from('lost'), { mandatory: true });
    await waitFor(() => returned.length, 'basic.return');
    const { fields, content } = returned[0];
    assert.deepEqual([fields.replyCode, fields.replyText, content.toString()], [312, 'NO_ROUTE', 'lost']);
  });
}

async function rpc(url, names) {
  await withConnection(url, async (connection) => {
    const server = await connection.createChannel();
    await server.assertQueue(names('rpc'), { exclusive: true });
    await server.consume(names('rpc'), (request) => {
      const { replyTo, correlationId } = request.properties;
      server.sendToQueue(replyTo, Buffer.from(request.content.toString().toUpperCase()), { correlationId });
      server.ack(request);
    });
    const client = await connection.createChannel();
    const { queue: replyQueue } = await client.assertQueue('', { exclusive: true });
    const replies = [];
    await client.consume(replyQueue, (reply) => replies.push(reply), { noAck: true });
    const correlationId = `${names('request')}-${Date.now()}`;
    client.sendToQueue(names('rpc'), Buffer.from('ping'), { replyTo: replyQueue, correlationId });
    await waitFor(() => replies.length, 'reply');
    const [reply] = replies;
    assert.deepEqual([reply.properties.correlationId, reply.content.toString()], [correlationId, 'PING']);
  });
}

async function large_message(url, names) {
  const body = largeBody();
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue(names('q'), { exclusive: true });
    channel.sendToQueue(queue, body);
    const received = (await get(channel, queue, { noAck: true })).content;
    assert.ok(received.equals(body), `received ${received.length} bytes equal to the ${body.length} sent`);
  });
}

async function many_channels(url, names) {
  await withConnection(url, async (connection) => {
    const channels = [];
    for (const _ of range(CHANNELS)) channels.push(await connection.createChannel());
    const { queue } = await channels[0].assertQueue(names('q'), { exclusive: true });
    channels.forEach((channel, n) => channel.sendToQueue(queue, Buffer.from(String(n))));
    const received = new Set();
    await channels[CHANNELS - 1].consume(queue, (message) => received.add(Number(message.content)), { noAck: true });
    await waitFor(() => received.size === CHANNELS, `${CHANNELS} messages`);
    for (const channel of channels) await channel.close();
  });
}

async function not_found(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    channel.on('error', ignore);
    await assert.rejects(channel.checkQueue(names('missing')), (error) => error.code === 404);
    await (await connection.createChannel()).assertQueue('', { exclusive: true });
  });
}

async function precondition_failed(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    channel.on('error', ignore);
    await channel.assertQueue(names('q'), { durable: false });
    await assert.rejects(channel.assertQueue(names('q'), { durable: true }), (error) => error.code === 406);
    await (await connection.createChannel()).deleteQueue(names('q'));
  });
}

async function heartbeat(url) {
  const withHeartbeat = new URL(url);
  withHeartbeat.searchParams.set('heartbeat', HEARTBEAT);
  await withConnection(withHeartbeat.toString(), async (connection) => {
    assert.equal(connection.connection.heartbeat, HEARTBEAT, 'negotiated heartbeat');
    await sleep(IDLE * 1000);
    await (await connection.createChannel()).assertQueue('', { exclusive: true });
  });
}

async function consumer_cancel(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue(names('q'), { exclusive: true });
    const cancelled = [];
    channel.on('cancel', (fields) => cancelled.push(fields.consumerTag));
    const { consumerTag } = await channel.consume(queue, ignore);
    await (await connection.createChannel()).deleteQueue(queue);
    await waitFor(() => cancelled.length, 'basic.cancel from the server');
    assert.deepEqual(cancelled, [consumerTag], 'cancelled consumer tags');
  });
}

const SCENARIOS = {
  connect, auth_refused, routing, ack, requeue, discard, prefetch, confirms, mandatory, rpc,
  large_message, many_channels, not_found, precondition_failed, heartbeat, consumer_cancel,
};

async function main(argv) {
  const option = (name) => argv.find((arg) => arg.startsWith(`--${name}=`))?.split('=').slice(1).join('=');
  if (argv.includes('--list')) {
    console.log(Object.keys(SCENARIOS).join('\n'));
    return;
  }
  const url = option('url');
  const prefix = option('prefix') ?? 'interop';
  for (const name of argv.filter((arg) => !arg.startsWith('--'))) {
    let result;
    try {
      await SCENARIOS[name](url, (suffix) => `${prefix}.${name}.${suffix}`);
      result = { scenario: name, ok: true, detail: '' };
    } catch (error) {
      result = { scenario: name, ok: false, detail: `${error.name}: ${error.message}` };
    }
    console.log(`INTEROP-RESULT ${JSON.stringify(result)}`);
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
