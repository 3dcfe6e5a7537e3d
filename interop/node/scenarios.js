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
const DEAD_LETTER_KEY = 'dead';
const QUEUE_TTL = 200;
const MESSAGE_EXPIRATION = '100';
const MAX_LENGTH = 2;
const MAX_PRIORITY = 10;
const PRIORITY_PUBLISHES = [[5, 'p5'], [undefined, 'none'], [9, 'p9'], [1, 'p1']];
const PRIORITY_EXPECTED = ['p9', 'p5', 'p1', 'none'];
const SAC_FIRST = 3;
const SAC_REST = 2;
const DELIVERY_LIMIT = 1;
const CONSUMER_PRIORITIES = { high: 10, low: 0 };
const CONSUMER_PRIORITY_MESSAGES = 3;
const CC_BCC_QUEUES = ['a', 'b', 'c'];
const CC_BCC_HEADERS = { CC: ['b'], BCC: ['c'] };
const CC_BCC_DELIVERED = { CC: ['b'] };
const QUEUE_EXPIRES = 300;
const EXPIRES_WAIT = 1.0;
const MAX_LENGTH_BYTES = 10;
const MAX_LENGTH_BYTES_BODIES = ['msg-0', 'msg-1', 'msg-2'];
const QUORUM_REFUSALS = [
  [{ durable: false }, {}, "PRECONDITION_FAILED - invalid property 'non-durable'"],
  [{ exclusive: true }, {}, "PRECONDITION_FAILED - invalid property 'exclusive-owner'"],
  [{ autoDelete: true }, {}, "PRECONDITION_FAILED - invalid property 'auto-delete'"],
  [{}, { 'x-max-priority': 5 }, "PRECONDITION_FAILED - invalid arg 'x-max-priority'"],
];
const STREAM_MESSAGES = 5;
const STREAM_OFFSET = 3;
const TOPIC_USER = 'interop-topic';
const TOPIC_EXCHANGE = 'amq.topic';
const topicRefusal = (key) =>
  `ACCESS_REFUSED - access to topic '${key}' in exchange '${TOPIC_EXCHANGE}' in vhost '/' ` +
  `refused for user '${TOPIC_USER}'`;
const OPERATOR_POLICY_QUEUES = 'interop.oppol.';
const OPERATOR_POLICY_ARGUMENT = 10;
const OPERATOR_POLICY_PUBLISHES = ['m0', 'm1', 'm2', 'm3', 'm4'];
const OPERATOR_POLICY_KEPT = ['m2', 'm3', 'm4'];
const DEDUP_PUBLISHES = [['m0', 'order-1'], ['m1', 'order-1'], ['m2', 'order-2']];
const DEDUP_EXPECTED = ['m0', 'm2'];
const DEDUP_CACHE_SIZE = 10;
const DELAY = 300;
const DELAYED_KEY = 'k';
const PATIENCE = 10;
const QUIET = 0.5;

const range = (n) => [...Array(n).keys()];
const numbered = (from, to) => range(to - from).map((n) => `m${from + n}`);
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

// The URL of the topic_permissions scenario's user, whose password is its name.
function topicUser(url) {
  const parsed = new URL(url);
  parsed.username = TOPIC_USER;
  parsed.password = TOPIC_USER;
  return parsed.toString();
}

// Whether an error is the channel.close of a refused topic: amqplib ends its message with the reply text.
const isTopicRefusal = (key) => (error) =>
  error.code === 403 && error.message.endsWith(`with message "${topicRefusal(key)}"`);

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

// The headers RabbitMQ 3.x writes on a message dead-lettered once from `queue`, published there via
// the default exchange: one x-death entry and the x-first-death-* headers.
function expectDeadLettered(headers = {}, reason, queue, originalExpiration) {
  const deaths = headers['x-death'] ?? [];
  assert.equal(deaths.length, 1, `x-death entries in ${JSON.stringify(headers)}`);
  const { time, ...death } = deaths[0];
  assert.notEqual(time, undefined, 'time in x-death');
  const expected = { count: 1, reason, queue, exchange: '', 'routing-keys': [queue] };
  if (originalExpiration !== undefined) expected['original-expiration'] = originalExpiration;
  assert.deepEqual(death, expected, 'x-death');
  const firstDeath = (key) => [key, headers[`x-first-death-${key}`]];
  const first = Object.fromEntries(['reason', 'queue', 'exchange'].map(firstDeath));
  assert.deepEqual(first, { reason, queue, exchange: '' }, 'x-first-death-*');
}

// A DLX with its queue; returns the arguments that make a queue dead-letter there.
async function deadLetterQueue(channel, names) {
  await channel.assertExchange(names('dlx'), 'direct', { autoDelete: true });
  await channel.assertQueue(names('dlq'), { exclusive: true });
  await channel.bindQueue(names('dlq'), names('dlx'), DEAD_LETTER_KEY);
  return { 'x-dead-letter-exchange': names('dlx'), 'x-dead-letter-routing-key': DEAD_LETTER_KEY };
}

async function getDeadLetter(channel, names) {
  const message = await get(channel, names('dlq'), { noAck: true });
  const { exchange, routingKey } = message.fields;
  assert.deepEqual([exchange, routingKey], [names('dlx'), DEAD_LETTER_KEY], "dead letter's exchange and key");
  return message;
}

// Publish on a confirm channel; resolves to 'ack' or 'nack'.
function publishConfirmed(channel, exchange, routingKey, content, options = {}) {
  return new Promise((resolve) => {
    channel.publish(exchange, routingKey, content, options, (error) => resolve(error ? 'nack' : 'ack'));
  });
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

async function dead_letter_ttl(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    const deadLetter = await deadLetterQueue(channel, names);
    const withTtl = { ...deadLetter, 'x-message-ttl': QUEUE_TTL };
    await channel.assertQueue(names('ttl'), { exclusive: true, arguments: withTtl });
    await channel.assertQueue(names('expiring'), { exclusive: true, arguments: deadLetter });
    channel.sendToQueue(names('ttl'), Buffer.from('queue-ttl'));
    channel.sendToQueue(names('expiring'), Buffer.from('message-ttl'), { expiration: MESSAGE_EXPIRATION });
    const dead = {};
    for (const _ of range(2)) {
      const message = await getDeadLetter(channel, names);
      dead[message.content.toString()] = message;
    }
    assert.deepEqual(Object.keys(dead).sort(), ['message-ttl', 'queue-ttl'], 'dead letters');
    expectDeadLettered(dead['queue-ttl'].properties.headers, 'expired', names('ttl'));
    expectDeadLettered(dead['message-ttl'].properties.headers, 'expired', names('expiring'), MESSAGE_EXPIRATION);
    assert.equal(dead['message-ttl'].properties.expiration, undefined, 'expiration of the dead letter');
    for (const queue of ['ttl', 'expiring']) {
      assert.equal((await channel.checkQueue(names(queue))).messageCount, 0, `messages left on ${queue}`);
    }
  });
}

async function dead_letter_reject(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    const deadLetter = await deadLetterQueue(channel, names);
    const { queue } = await channel.assertQueue(names('q'), { exclusive: true, arguments: deadLetter });
    channel.sendToQueue(queue, Buffer.from('rejected'));
    channel.reject(await get(channel, queue), false);
    const message = await getDeadLetter(channel, names);
    assert.equal(message.content.toString(), 'rejected', 'dead letter');
    expectDeadLettered(message.properties.headers, 'rejected', queue);
  });
}

async function max_length(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createConfirmChannel();
    const drop = names('drop');
    await channel.assertQueue(drop, { exclusive: true, arguments: { 'x-max-length': MAX_LENGTH } });
    for (const n of range(MAX_LENGTH + 1)) channel.sendToQueue(drop, Buffer.from(`m${n}`));
    await channel.waitForConfirms();
    const kept = [];
    for (const _ of range(MAX_LENGTH)) kept.push((await get(channel, drop, { noAck: true })).content.toString());
    assert.deepEqual(kept, numbered(1, MAX_LENGTH + 1), 'messages kept by drop-head');
    assert.equal(await channel.get(drop), false, 'message left');
    const reject = names('reject');
    const arguments_ = { 'x-max-length': MAX_LENGTH, 'x-overflow': 'reject-publish' };
    await channel.assertQueue(reject, { exclusive: true, arguments: arguments_ });
    const outcomes = [];
    for (const n of range(MAX_LENGTH + 1)) {
      outcomes.push(await publishConfirmed(channel, '', reject, Buffer.from(`m${n}`)));
    }
    assert.deepEqual(outcomes, [...Array(MAX_LENGTH).fill('ack'), 'nack'], 'confirms');
    assert.equal((await channel.checkQueue(reject)).messageCount, MAX_LENGTH, 'messages in queue');
  });
}

async function priority(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    const options = { exclusive: true, arguments: { 'x-max-priority': MAX_PRIORITY } };
    const { queue } = await channel.assertQueue(names('q'), options);
    for (const [level, body] of PRIORITY_PUBLISHES) channel.sendToQueue(queue, Buffer.from(body), { priority: level });
    const bodies = [];
    await channel.consume(queue, (message) => bodies.push(message.content.toString()), { noAck: true });
    await waitFor(() => bodies.length === PRIORITY_EXPECTED.length, 'deliveries');
    assert.deepEqual(bodies, PRIORITY_EXPECTED, 'delivery order');
  });
}

async function single_active_consumer(url, names) {
  await withConnection(url, async (connection) => {
    const first = await connection.createChannel();
    const second = await connection.createChannel();
    const options = { exclusive: true, arguments: { 'x-single-active-consumer': true } };
    const { queue } = await first.assertQueue(names('q'), options);
    const received = { first: [], second: [] };
    for (const [name, channel] of [['first', first], ['second', second]]) {
      const deliver = (message) => received[name].push(message.content.toString());
      await channel.consume(queue, deliver, { noAck: true, consumerTag: name });
    }
    const delivered = () => received.first.length + received.second.length;
    for (const n of range(SAC_FIRST)) first.sendToQueue(queue, Buffer.from(`m${n}`));
    await waitFor(() => delivered() === SAC_FIRST, 'deliveries');
    assert.deepEqual(received, { first: numbered(0, SAC_FIRST), second: [] }, 'while the first consumes');
    await first.cancel('first');
    for (const n of range(SAC_REST)) first.sendToQueue(queue, Buffer.from(`m${SAC_FIRST + n}`));
    await waitFor(() => delivered() === SAC_FIRST + SAC_REST, 'deliveries');
    const expected = { first: numbered(0, SAC_FIRST), second: numbered(SAC_FIRST, SAC_FIRST + SAC_REST) };
    assert.deepEqual(received, expected, 'after the first cancelled');
  });
}

async function alternate_exchange(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createConfirmChannel();
    await channel.assertExchange(names('ae'), 'fanout', { autoDelete: true });
    await channel.assertQueue(names('unrouted'), { exclusive: true });
    await channel.bindQueue(names('unrouted'), names('ae'), '');
    await channel.assertExchange(names('x'), 'direct', { arguments: { 'alternate-exchange': names('ae') } });
    const returned = [];
    channel.on('return', (message) => returned.push(message));
    const body = Buffer.from('unroutable');
    const outcome = await publishConfirmed(channel, names('x'), 'nowhere', body, { mandatory: true });
    assert.equal(outcome, 'ack', 'confirm');
    assert.deepEqual(returned, [], 'returned messages'); // a basic.return comes before the confirm
    const { fields, content } = await get(channel, names('unrouted'), { noAck: true });
    const delivered = [fields.exchange, fields.routingKey, content.toString()];
    assert.deepEqual(delivered, [names('x'), 'nowhere', 'unroutable'], "message in the AE's queue");
    await channel.deleteExchange(names('x'));
  });
}

async function quorum_queue(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    const deadLetter = await deadLetterQueue(channel, names);
    const arguments_ = { 'x-queue-type': 'quorum', 'x-delivery-limit': DELIVERY_LIMIT, ...deadLetter };
    const { queue } = await channel.assertQueue(names('quorum'), { durable: true, arguments: arguments_ });
    channel.sendToQueue(queue, Buffer.from('poison'));
    channel.reject(await get(channel, queue), true);
    const message = await get(channel, queue);
    const redelivery = [message.fields.redelivered, message.properties.headers?.['x-delivery-count']];
    assert.deepEqual(redelivery, [true, 1], 'redelivered, x-delivery-count');
    channel.reject(message, true);
    const dead = await getDeadLetter(channel, names);
    assert.equal(dead.content.toString(), 'poison', 'dead letter');
    expectDeadLettered(dead.properties.headers, 'delivery_limit', queue);
    await channel.deleteQueue(queue);
  });
}

async function consumer_priority(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    const { queue } = await channel.assertQueue(names('q'), { exclusive: true });
    const received = { high: [], low: [] };
    for (const [name, priority] of Object.entries(CONSUMER_PRIORITIES)) {
      const consumer = await connection.createChannel();
      await consumer.prefetch(CONSUMER_PRIORITY_MESSAGES);
      await consumer.consume(queue, (message) => received[name].push(message.content.toString()), { priority });
    }
    for (const n of range(CONSUMER_PRIORITY_MESSAGES)) channel.sendToQueue(queue, Buffer.from(`m${n}`));
    await waitFor(() => received.high.length === CONSUMER_PRIORITY_MESSAGES, 'deliveries');
    await sleep(QUIET * 1000);
    assert.deepEqual(received, { high: numbered(0, CONSUMER_PRIORITY_MESSAGES), low: [] }, 'deliveries');
  });
}

async function cc_bcc(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    await channel.assertExchange(names('x'), 'direct', { autoDelete: true });
    for (const key of CC_BCC_QUEUES) {
      await channel.assertQueue(names(key), { exclusive: true });
      await channel.bindQueue(names(key), names('x'), key);
    }
    channel.publish(names('x'), CC_BCC_QUEUES[0], Buffer.from('copied'), { headers: CC_BCC_HEADERS });
    for (const key of CC_BCC_QUEUES) {
      const { fields, properties, content } = await get(channel, names(key), { noAck: true });
      const delivered = [fields.routingKey, properties.headers, content.toString()];
      assert.deepEqual(delivered, [CC_BCC_QUEUES[0], CC_BCC_DELIVERED, 'copied'], `copy on queue ${key}`);
    }
  });
}

async function queue_expires(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    channel.on('error', ignore);
    await channel.assertQueue(names('q'), { arguments: { 'x-expires': QUEUE_EXPIRES } });
    await sleep(EXPIRES_WAIT * 1000);
    await assert.rejects(channel.checkQueue(names('q')), (error) => error.code === 404);
  });
}

async function max_length_bytes(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createConfirmChannel();
    const queue = names('q');
    await channel.assertQueue(queue, { exclusive: true, arguments: { 'x-max-length-bytes': MAX_LENGTH_BYTES } });
    for (const body of MAX_LENGTH_BYTES_BODIES) channel.sendToQueue(queue, Buffer.from(body));
    await channel.waitForConfirms();
    const kept = [];
    for (const _ of range(2)) kept.push((await get(channel, queue, { noAck: true })).content.toString());
    assert.deepEqual(kept, MAX_LENGTH_BYTES_BODIES.slice(1), 'messages kept by drop-head');
    assert.equal(await channel.get(queue), false, 'message left');
  });
}

async function reject_publish_dlx(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createConfirmChannel();
    const deadLetter = await deadLetterQueue(channel, names);
    const arguments_ = { 'x-max-length': MAX_LENGTH, 'x-overflow': 'reject-publish-dlx', ...deadLetter };
    const { queue } = await channel.assertQueue(names('q'), { exclusive: true, arguments: arguments_ });
    const outcomes = [];
    for (const n of range(MAX_LENGTH + 1)) {
      outcomes.push(await publishConfirmed(channel, '', queue, Buffer.from(`m${n}`)));
    }
    assert.deepEqual(outcomes, [...Array(MAX_LENGTH).fill('ack'), 'nack'], 'confirms');
    const dead = await getDeadLetter(channel, names);
    assert.equal(dead.content.toString(), `m${MAX_LENGTH}`, 'dead letter');
    expectDeadLettered(dead.properties.headers, 'maxlen', queue);
    assert.equal((await channel.checkQueue(queue)).messageCount, MAX_LENGTH, 'messages in queue');
  });
}

async function quorum_declare_rules(url, names) {
  await withConnection(url, async (connection) => {
    const queue = names('q');
    for (const [flags, arguments_, text] of QUORUM_REFUSALS) {
      const channel = await connection.createChannel();
      channel.on('error', ignore);
      const options = { durable: true, ...flags, arguments: { 'x-queue-type': 'quorum', ...arguments_ } };
      const refused = (error) => error.code === 406 && error.message.includes(`${text} for queue '${queue}'`);
      await assert.rejects(channel.assertQueue(queue, options), refused);
    }
    const channel = await connection.createChannel();
    await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await channel.deleteQueue(queue);
  });
}

async function stream(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createConfirmChannel();
    const options = { durable: true, arguments: { 'x-queue-type': 'stream' } };
    const { queue } = await channel.assertQueue(names('stream'), options);
    for (const n of range(STREAM_MESSAGES)) channel.sendToQueue(queue, Buffer.from(`s${n}`));
    await channel.waitForConfirms();
    const reader = async (offset, count) => {
      const consuming = await connection.createChannel();
      await consuming.prefetch(count);
      const got = [];
      const onMessage = (message) => {
        if (message === null) return; // cancelled by the server when the stream is deleted
        got.push([message.content.toString(), Number(message.properties.headers['x-stream-offset'])]);
        consuming.ack(message);
      };
      await consuming.consume(queue, onMessage, { arguments: { 'x-stream-offset': offset } });
      return got;
    };
    const expected = (from, to) => range(to - from).map((n) => [`s${from + n}`, from + n]);
    const first = await reader('first', STREAM_MESSAGES);
    const middle = await reader(STREAM_OFFSET, STREAM_MESSAGES - STREAM_OFFSET);
    await waitFor(() => first.length + middle.length === 2 * STREAM_MESSAGES - STREAM_OFFSET, 'deliveries');
    assert.deepEqual(first, expected(0, STREAM_MESSAGES), 'from first');
    assert.deepEqual(middle, expected(STREAM_OFFSET, STREAM_MESSAGES), `from ${STREAM_OFFSET}`);
    const following = await reader('next', 1);
    channel.sendToQueue(queue, Buffer.from(`s${STREAM_MESSAGES}`));
    await waitFor(() => following.length === 1, 'the delivery from next');
    assert.deepEqual(following, expected(STREAM_MESSAGES, STREAM_MESSAGES + 1), 'from next');
    await channel.deleteQueue(queue);
  });
}

async function topic_permissions(url, names) {
  const [allowed, readable, refused] = ['allowed', 'readable', 'refused'].map((word) => `${word}.${names('key')}`);
  await withConnection(topicUser(url), async (connection) => {
    let channel = await connection.createChannel();
    channel.on('error', ignore);
    const { queue } = await channel.assertQueue(names('q'), { exclusive: true });
    for (const key of [allowed, readable]) await channel.bindQueue(queue, TOPIC_EXCHANGE, key);
    channel.publish(TOPIC_EXCHANGE, allowed, Buffer.from('allowed'));
    const { fields, content } = await get(channel, queue, { noAck: true });
    const delivered = [fields.routingKey, content.toString()];
    assert.deepEqual(delivered, [allowed, 'allowed'], 'message published with the allowed key');
    channel.publish(TOPIC_EXCHANGE, readable, Buffer.from('refused'));
    // The next method on the channel is answered with the publish's channel.close.
    const publishAccepted = `a publish with the key ${readable} was accepted`;
    await assert.rejects(channel.checkQueue(queue), isTopicRefusal(readable), publishAccepted);
    channel = await connection.createChannel();
    channel.on('error', ignore);
    const bindAccepted = `a binding with the key ${refused} was accepted`;
    await assert.rejects(channel.bindQueue(queue, TOPIC_EXCHANGE, refused), isTopicRefusal(refused), bindAccepted);
    assert.equal(await messageCount(connection, queue), 0, 'messages left');
  });
}

async function operator_policy(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createConfirmChannel();
    const queue = `${OPERATOR_POLICY_QUEUES}${names('q')}`;
    await channel.assertQueue(queue, { exclusive: true, arguments: { 'x-max-length': OPERATOR_POLICY_ARGUMENT } });
    for (const body of OPERATOR_POLICY_PUBLISHES) channel.sendToQueue(queue, Buffer.from(body));
    await channel.waitForConfirms();
    assert.equal((await channel.checkQueue(queue)).messageCount, OPERATOR_POLICY_KEPT.length, 'messages in queue');
    const kept = [];
    for (const _ of OPERATOR_POLICY_KEPT) kept.push((await get(channel, queue, { noAck: true })).content.toString());
    assert.deepEqual(kept, OPERATOR_POLICY_KEPT, 'messages kept by drop-head');
    assert.equal((await channel.deleteQueue(queue)).messageCount, 0, 'messages left');
  });
}

async function deduplication(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createConfirmChannel();
    const { queue } = await channel.assertQueue(names('dedup-q'), {
      exclusive: true, arguments: { 'x-message-deduplication': true },
    });
    await channel.assertExchange(names('dedup-x'), 'x-message-deduplication', {
      autoDelete: true, arguments: { 'x-cache-size': DEDUP_CACHE_SIZE },
    });
    const { queue: bound } = await channel.assertQueue(names('dedup-bound'), { exclusive: true });
    await channel.bindQueue(bound, names('dedup-x'), '');
    for (const [exchange, routingKey, target] of [['', queue, queue], [names('dedup-x'), '', bound]]) {
      for (const [body, value] of DEDUP_PUBLISHES) {
        const headers = { 'x-deduplication-header': value };
        const outcome = await publishConfirmed(channel, exchange, routingKey, Buffer.from(body), { headers });
        assert.equal(outcome, 'ack', 'confirm');
      }
      const got = [];
      for (let message; (message = await channel.get(target, { noAck: true }));) got.push(message.content.toString());
      assert.deepEqual(got, DEDUP_EXPECTED, `messages in ${target}`);
    }
  });
}

async function delayed_message(url, names) {
  await withConnection(url, async (connection) => {
    const channel = await connection.createChannel();
    await channel.assertExchange(names('delayed'), 'x-delayed-message', {
      autoDelete: true, arguments: { 'x-delayed-type': 'direct' },
    });
    const { queue } = await channel.assertQueue(names('delayed-q'), { exclusive: true });
    await channel.bindQueue(queue, names('delayed'), DELAYED_KEY);
    channel.publish(names('delayed'), DELAYED_KEY, Buffer.from('late'), { headers: { 'x-delay': DELAY } });
    channel.publish(names('delayed'), DELAYED_KEY, Buffer.from('now'));
    const got = [];
    for (const _ of range(2)) {
      const { properties, content } = await get(channel, queue, { noAck: true });
      got.push([content.toString(), properties.headers]);
    }
    assert.deepEqual(got, [['now', {}], ['late', { 'x-delay': -DELAY }]], 'deliveries (body, headers)');
  });
}

const SCENARIOS = {
  connect, auth_refused, routing, ack, requeue, discard, prefetch, confirms, mandatory, rpc,
  large_message, many_channels, not_found, precondition_failed, heartbeat, consumer_cancel,
  dead_letter_ttl, dead_letter_reject, max_length, priority, single_active_consumer, alternate_exchange,
  quorum_queue, consumer_priority, cc_bcc, queue_expires, max_length_bytes, reject_publish_dlx,
  quorum_declare_rules, stream, topic_permissions, operator_policy, deduplication, delayed_message,
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
