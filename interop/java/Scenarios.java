import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.AuthenticationFailureException;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Envelope;
import com.rabbitmq.client.GetResponse;
import com.rabbitmq.client.LongString;
import com.rabbitmq.client.ShutdownSignalException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import java.util.stream.IntStream;

/**
 * The scenarios with the RabbitMQ Java client.
 *
 * <p>Run as {@code java Scenarios --url=URL --prefix=PREFIX --timeout=SECONDS SCENARIO...}: all the
 * given scenarios run in this one JVM, each in its own thread with its own time limit, and each
 * prints one {@code INTEROP-RESULT {"scenario", "ok", "detail"}} line. {@code --list} prints the
 * names of the scenarios implemented here.
 */
public final class Scenarios {
    // The numbers every client shares; keep them in step with interop/scenarios.py.
    static final Map<String, Map<String, String>> ROUTING_BINDINGS = Map.of(
            "a", Map.of("direct", "red", "topic", "stock.*.nyse"),
            "b", Map.of("direct", "green", "topic", "stock.#"));
    static final String[][] ROUTING_PUBLISHES = {
        {"direct", "red", "direct-red"},
        {"direct", "green", "direct-green"},
        {"direct", "blue", "direct-blue"},
        {"fanout", "", "fanout"},
        {"topic", "stock.ibm.nyse", "topic-nyse"},
        {"topic", "stock.ibm", "topic-ibm"},
        {"default", "a", "default"},
    };
    static final Map<String, List<String>> ROUTING_EXPECTED = Map.of(
            "a", List.of("direct-red", "fanout", "topic-nyse", "default"),
            "b", List.of("direct-green", "fanout", "topic-nyse", "topic-ibm"));
    static final int ACK_MESSAGES = 3;
    static final int PREFETCH_COUNT = 2;
    static final int PREFETCH_MESSAGES = 5;
    static final int CONFIRMED_MESSAGES = 10;
    static final int LARGE_MESSAGE_SIZE = 5 * 1024 * 1024;
    static final int CHANNELS = 100;
    static final int HEARTBEAT = 2;
    static final int IDLE = 8;
    static final String DEAD_LETTER_KEY = "dead";
    static final int QUEUE_TTL = 200;
    static final String MESSAGE_EXPIRATION = "100";
    static final int MAX_LENGTH = 2;
    static final int MAX_PRIORITY = 10;
    static final Object[][] PRIORITY_PUBLISHES = {{5, "p5"}, {null, "none"}, {9, "p9"}, {1, "p1"}};
    static final List<String> PRIORITY_EXPECTED = List.of("p9", "p5", "p1", "none");
    static final int SAC_FIRST = 3;
    static final int SAC_REST = 2;
    static final int DELIVERY_LIMIT = 1;
    static final Map<String, Integer> CONSUMER_PRIORITIES = Map.of("high", 10, "low", 0);
    static final int CONSUMER_PRIORITY_MESSAGES = 3;
    static final List<String> CC_BCC_QUEUES = List.of("a", "b", "c");
    static final Map<String, Object> CC_BCC_HEADERS = Map.of("CC", List.of("b"), "BCC", List.of("c"));
    static final Map<String, Object> CC_BCC_DELIVERED = Map.of("CC", List.of("b"));
    static final int QUEUE_EXPIRES = 300;
    static final long EXPIRES_WAIT_MILLIS = 1000;
    static final int MAX_LENGTH_BYTES = 10;
    static final List<String> MAX_LENGTH_BYTES_BODIES = List.of("msg-0", "msg-1", "msg-2");
    /** Declarations of a quorum queue: durable, exclusive, auto-delete, extra arguments, reply text start. */
    static final Object[][] QUORUM_REFUSALS = {
        {false, false, false, Map.of(), "PRECONDITION_FAILED - invalid property 'non-durable'"},
        {true, true, false, Map.of(), "PRECONDITION_FAILED - invalid property 'exclusive-owner'"},
        {true, false, true, Map.of(), "PRECONDITION_FAILED - invalid property 'auto-delete'"},
        {true, false, false, Map.of("x-max-priority", 5), "PRECONDITION_FAILED - invalid arg 'x-max-priority'"},
    };
    static final int STREAM_MESSAGES = 5;
    static final int STREAM_OFFSET = 3;
    static final String TOPIC_USER = "interop-topic";
    static final String TOPIC_EXCHANGE = "amq.topic";
    static final String OPERATOR_POLICY_QUEUES = "interop.oppol.";
    static final int OPERATOR_POLICY_ARGUMENT = 10;
    static final List<String> OPERATOR_POLICY_PUBLISHES = List.of("m0", "m1", "m2", "m3", "m4");
    static final List<String> OPERATOR_POLICY_KEPT = List.of("m2", "m3", "m4");
    static final String[][] DEDUP_PUBLISHES = {{"m0", "order-1"}, {"m1", "order-1"}, {"m2", "order-2"}};
    static final List<String> DEDUP_EXPECTED = List.of("m0", "m2");
    static final int DEDUP_CACHE_SIZE = 10;
    static final int DELAY = 300;
    static final String DELAYED_KEY = "k";
    static final int PATIENCE = 10;
    static final long QUIET_MILLIS = 500;

    interface Scenario {
        void run(String url, Names names) throws Exception;
    }

    record Names(String prefix) {
        String of(String suffix) {
            return prefix + "." + suffix;
        }
    }

    static ConnectionFactory factory(String url) throws Exception {
        ConnectionFactory factory = new ConnectionFactory();
        factory.setUri(url);
        factory.setAutomaticRecoveryEnabled(false);
        return factory;
    }

    static Connection connect(String url) throws Exception {
        return factory(url).newConnection();
    }

    static void expect(Object actual, Object expected, String what) {
        if (!Objects.equals(actual, expected)) {
            throw new AssertionError(what + ": expected " + expected + ", got " + actual);
        }
    }

    static void waitFor(BooleanSupplier done, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(PATIENCE);
        while (!done.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("no " + what + " within " + PATIENCE + " s");
            }
            Thread.sleep(10);
        }
    }

    /** basic.get, retried while the queue is still empty. */
    static GetResponse get(Channel channel, String queue, boolean autoAck) throws Exception {
        GetResponse[] got = {null};
        waitFor(() -> (got[0] = basicGet(channel, queue, autoAck)) != null, "message on " + queue);
        return got[0];
    }

    static GetResponse basicGet(Channel channel, String queue, boolean autoAck) {
        try {
            return channel.basicGet(queue, autoAck);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static List<String> numbered(int count) {
        return numbered(0, count);
    }

    static List<String> numbered(int from, int to) {
        return IntStream.range(from, to).mapToObj(n -> "m" + n).toList();
    }

    static String text(byte[] body) {
        return new String(body, StandardCharsets.UTF_8);
    }

    static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    static int replyCode(IOException error) {
        return channelClose(error).getReplyCode();
    }

    static AMQP.Channel.Close channelClose(IOException error) {
        ShutdownSignalException shutdown = (ShutdownSignalException) error.getCause();
        return (AMQP.Channel.Close) shutdown.getReason();
    }

    /** A consumer that collects its deliveries. */
    static final class Collector extends DefaultConsumer {
        final List<GetResponse> deliveries = new CopyOnWriteArrayList<>();
        final List<String> cancelled = new CopyOnWriteArrayList<>();

        Collector(Channel channel) {
            super(channel);
        }

        @Override
        public void handleDelivery(String tag, Envelope envelope, AMQP.BasicProperties properties, byte[] body) {
            deliveries.add(new GetResponse(envelope, properties, body, 0));
        }

        @Override
        public void handleCancel(String tag) {
            cancelled.add(tag);
        }
    }

    /** A header value with the client's LongStrings as Strings, in lists and tables too. */
    static Object plain(Object value) {
        if (value instanceof LongString text) {
            return text.toString();
        }
        if (value instanceof List<?> list) {
            return list.stream().map(Scenarios::plain).toList();
        }
        if (value instanceof Map<?, ?> table) {
            Map<String, Object> plainTable = new HashMap<>();
            table.forEach((key, item) -> plainTable.put(key.toString(), plain(item)));
            return plainTable;
        }
        return value;
    }

    /**
     * The headers RabbitMQ 3.x writes on a message dead-lettered once from {@code queue}, published there
     * via the default exchange: one x-death entry and the x-first-death-* headers.
     */
    @SuppressWarnings("unchecked")
    static void expectDeadLettered(
            Map<String, Object> headers, String reason, String queue, String originalExpiration) {
        Map<String, Object> plainHeaders = headers == null ? Map.of() : (Map<String, Object>) plain(headers);
        List<Map<String, Object>> deaths = (List<Map<String, Object>>) plainHeaders.getOrDefault("x-death", List.of());
        expect(deaths.size(), 1, "x-death entries in " + plainHeaders);
        Map<String, Object> death = new HashMap<>(deaths.get(0));
        expect(death.remove("time") != null, true, "time in x-death " + death);
        Map<String, Object> expected = new HashMap<>(Map.of(
                "count", 1L, "reason", reason, "queue", queue, "exchange", "", "routing-keys", List.of(queue)));
        if (originalExpiration != null) {
            expected.put("original-expiration", originalExpiration);
        }
        expect(death, expected, "x-death");
        Map<String, Object> first = new HashMap<>();
        for (String key : List.of("reason", "queue", "exchange")) {
            first.put(key, plainHeaders.get("x-first-death-" + key));
        }
        expect(first, Map.of("reason", reason, "queue", queue, "exchange", ""), "x-first-death-*");
    }

    /** Publishes m0.. one over the queue's x-max-length, with confirms: the last one must be nacked. */
    static void expectLastNacked(Channel channel, String queue) throws Exception {
        channel.confirmSelect();
        List<String> outcomes = new ArrayList<>();
        for (int n = 0; n <= MAX_LENGTH; n++) {
            channel.basicPublish("", queue, null, bytes("m" + n));
            // true when everything published since the last call was acked, false when one was nacked
            boolean acked = channel.waitForConfirms(TimeUnit.SECONDS.toMillis(PATIENCE));
            outcomes.add(acked ? "ack" : "nack");
        }
        List<String> expected = new ArrayList<>(Collections.nCopies(MAX_LENGTH, "ack"));
        expected.add("nack");
        expect(outcomes, expected, "confirms");
    }

    /** A DLX with its queue; returns the arguments that make a queue dead-letter there. */
    static Map<String, Object> deadLetterQueue(Channel channel, Names names) throws IOException {
        channel.exchangeDeclare(names.of("dlx"), "direct", false, true, null);
        channel.queueDeclare(names.of("dlq"), false, true, false, null);
        channel.queueBind(names.of("dlq"), names.of("dlx"), DEAD_LETTER_KEY);
        return Map.of("x-dead-letter-exchange", names.of("dlx"), "x-dead-letter-routing-key", DEAD_LETTER_KEY);
    }

    static GetResponse getDeadLetter(Channel channel, Names names) throws Exception {
        GetResponse message = get(channel, names.of("dlq"), true);
        expect(List.of(message.getEnvelope().getExchange(), message.getEnvelope().getRoutingKey()),
                List.of(names.of("dlx"), DEAD_LETTER_KEY), "dead letter's exchange and key");
        return message;
    }

    static List<String> bodies(Collector consumer) {
        return consumer.deliveries.stream().map(message -> text(message.getBody())).toList();
    }

    static void connect(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            expect(channel.isOpen(), true, "channel open");
            channel.close();
        }
    }

    static void auth_refused(String url, Names names) throws Exception {
        ConnectionFactory factory = factory(url);
        factory.setPassword("wrong-" + factory.getPassword());
        try {
            factory.newConnection().close();
        } catch (AuthenticationFailureException refused) {
            return;
        }
        throw new AssertionError("a wrong password was accepted");
    }

    static void routing(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            for (String kind : List.of("direct", "fanout", "topic")) {
                channel.exchangeDeclare(names.of(kind), kind, false, true, null);
            }
            for (var queue : ROUTING_BINDINGS.entrySet()) {
                channel.queueDeclare(names.of(queue.getKey()), false, true, false, null);
                channel.queueBind(names.of(queue.getKey()), names.of("fanout"), "");
                for (var binding : queue.getValue().entrySet()) {
                    channel.queueBind(names.of(queue.getKey()), names.of(binding.getKey()), binding.getValue());
                }
            }
            for (String[] publish : ROUTING_PUBLISHES) {
                boolean viaDefault = publish[0].equals("default");
                String exchange = viaDefault ? "" : names.of(publish[0]);
                String routingKey = viaDefault ? names.of(publish[1]) : publish[1];
                channel.basicPublish(exchange, routingKey, null, bytes(publish[2]));
            }
            for (var queue : ROUTING_EXPECTED.entrySet()) {
                List<String> bodies = new ArrayList<>();
                for (int n = 0; n < queue.getValue().size(); n++) {
                    bodies.add(text(get(channel, names.of(queue.getKey()), true).getBody()));
                }
                expect(bodies, queue.getValue(), "messages on queue " + queue.getKey());
                String name = names.of(queue.getKey());
                expect(channel.basicGet(name, true), null, "message left on queue " + queue.getKey());
            }
        }
    }

    static void ack(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            String queue = channel.queueDeclare(names.of("q"), false, true, false, null).getQueue();
            for (int n = 0; n < ACK_MESSAGES; n++) {
                channel.basicPublish("", queue, null, bytes("m" + n));
            }
            List<String> bodies = new CopyOnWriteArrayList<>();
            channel.basicConsume(queue, false, new DefaultConsumer(channel) {
                @Override
                public void handleDelivery(String tag, Envelope envelope, AMQP.BasicProperties properties, byte[] body)
                        throws IOException {
                    bodies.add(text(body));
                    getChannel().basicAck(envelope.getDeliveryTag(), false);
                }
            });
            waitFor(() -> bodies.size() == ACK_MESSAGES, "deliveries");
            expect(bodies, numbered(ACK_MESSAGES), "consumed");
            channel.close();
            expect(connection.createChannel().queueDeclarePassive(queue).getMessageCount(), 0,
                    "messages requeued after channel close");
        }
    }

    static void requeue(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            String queue = channel.queueDeclare(names.of("q"), false, true, false, null).getQueue();
            channel.basicPublish("", queue, null, bytes("again"));
            GetResponse message = get(channel, queue, false);
            expect(List.of(text(message.getBody()), message.getEnvelope().isRedeliver()), List.of("again", false),
                    "first delivery");
            channel.basicReject(message.getEnvelope().getDeliveryTag(), true);
            message = get(channel, queue, false);
            expect(List.of(text(message.getBody()), message.getEnvelope().isRedeliver()), List.of("again", true),
                    "delivery after reject");
            channel.basicNack(message.getEnvelope().getDeliveryTag(), false, true);
            message = get(channel, queue, false);
            expect(List.of(text(message.getBody()), message.getEnvelope().isRedeliver()), List.of("again", true),
                    "delivery after nack");
            channel.basicAck(message.getEnvelope().getDeliveryTag(), false);
            expect(channel.basicGet(queue, false), null, "basic.get after ack");
        }
    }

    static void discard(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            String queue = channel.queueDeclare(names.of("q"), false, true, false, null).getQueue();
            channel.basicPublish("", queue, null, bytes("rejected"));
            channel.basicPublish("", queue, null, bytes("nacked"));
            channel.basicReject(get(channel, queue, false).getEnvelope().getDeliveryTag(), false);
            channel.basicNack(get(channel, queue, false).getEnvelope().getDeliveryTag(), false, false);
            channel.close();
            expect(connection.createChannel().queueDeclarePassive(queue).getMessageCount(), 0, "messages left");
        }
    }

    static void prefetch(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            String queue = channel.queueDeclare(names.of("q"), false, true, false, null).getQueue();
            for (int n = 0; n < PREFETCH_MESSAGES; n++) {
                channel.basicPublish("", queue, null, bytes("m" + n));
            }
            channel.basicQos(PREFETCH_COUNT);
            Collector consumer = new Collector(channel);
            channel.basicConsume(queue, false, consumer);
            List<GetResponse> held = consumer.deliveries;
            waitFor(() -> held.size() >= PREFETCH_COUNT, "deliveries");
            Thread.sleep(QUIET_MILLIS);
            expect(held.size(), PREFETCH_COUNT, "deliveries before any ack");
            channel.basicAck(held.get(0).getEnvelope().getDeliveryTag(), false);
            waitFor(() -> held.size() > PREFETCH_COUNT, "delivery after an ack");
            Thread.sleep(QUIET_MILLIS);
            expect(held.size(), PREFETCH_COUNT + 1, "deliveries after one ack");
            while (held.size() < PREFETCH_MESSAGES) {
                int count = held.size();
                channel.basicAck(held.get(count - PREFETCH_COUNT).getEnvelope().getDeliveryTag(), false);
                waitFor(() -> held.size() > count, "delivery");
            }
            List<String> bodies = held.stream().map(message -> text(message.getBody())).toList();
            expect(bodies, numbered(PREFETCH_MESSAGES), "delivered");
        }
    }

    static void confirms(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            String queue = channel.queueDeclare(names.of("q"), false, true, false, null).getQueue();
            channel.confirmSelect();
            for (int n = 0; n < CONFIRMED_MESSAGES; n++) {
                channel.basicPublish("", queue, null, bytes("m" + n));
            }
            channel.waitForConfirmsOrDie(TimeUnit.SECONDS.toMillis(PATIENCE));
            expect(channel.queueDeclarePassive(queue).getMessageCount(), CONFIRMED_MESSAGES, "messages in queue");
        }
    }

    static void mandatory(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            List<List<Object>> returned = new CopyOnWriteArrayList<>();
            channel.addReturnListener((replyCode, replyText, exchange, routingKey, properties, body) ->
                    returned.add(List.of(replyCode, replyText, text(body))));
            channel.basicPublish("", names.of("nowhere"), true, null, bytes("lost"));
            waitFor(() -> !returned.isEmpty(), "basic.return");
            expect(returned.get(0), List.of(312, "NO_ROUTE", "lost"), "basic.return");
        }
    }

    static void rpc(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel server = connection.createChannel();
            server.queueDeclare(names.of("rpc"), false, true, false, null);
            server.basicConsume(names.of("rpc"), false, new DefaultConsumer(server) {
                @Override
                public void handleDelivery(String tag, Envelope envelope, AMQP.BasicProperties request, byte[] body)
                        throws IOException {
                    var reply = new AMQP.BasicProperties.Builder().correlationId(request.getCorrelationId()).build();
                    getChannel().basicPublish("", request.getReplyTo(), reply, bytes(text(body).toUpperCase()));
                    getChannel().basicAck(envelope.getDeliveryTag(), false);
                }
            });
            Channel client = connection.createChannel();
            String replyQueue = client.queueDeclare().getQueue();
            Collector replies = new Collector(client);
            client.basicConsume(replyQueue, true, replies);
            String correlationId = UUID.randomUUID().toString();
            var request = new AMQP.BasicProperties.Builder().replyTo(replyQueue).correlationId(correlationId).build();
            client.basicPublish("", names.of("rpc"), request, bytes("ping"));
            waitFor(() -> !replies.deliveries.isEmpty(), "reply");
            GetResponse reply = replies.deliveries.get(0);
            expect(List.of(reply.getProps().getCorrelationId(), text(reply.getBody())), List.of(correlationId, "PING"),
                    "reply");
        }
    }

    static void large_message(String url, Names names) throws Exception {
        byte[] body = new byte[LARGE_MESSAGE_SIZE];
        for (int i = 0; i < body.length; i++) {
            body[i] = (byte) (i % 251);
        }
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            String queue = channel.queueDeclare(names.of("q"), false, true, false, null).getQueue();
            channel.basicPublish("", queue, null, body);
            byte[] received = get(channel, queue, true).getBody();
            expect(Arrays.equals(received, body), true,
                    "received " + received.length + " bytes equal to the " + body.length + " sent");
        }
    }

    static void many_channels(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            List<Channel> channels = new ArrayList<>();
            for (int n = 0; n < CHANNELS; n++) {
                channels.add(connection.createChannel());
            }
            String queue = channels.get(0).queueDeclare(names.of("q"), false, true, false, null).getQueue();
            for (int n = 0; n < CHANNELS; n++) {
                channels.get(n).basicPublish("", queue, null, bytes(String.valueOf(n)));
            }
            Collector consumer = new Collector(channels.get(CHANNELS - 1));
            channels.get(CHANNELS - 1).basicConsume(queue, true, consumer);
            waitFor(() -> consumer.deliveries.size() == CHANNELS, CHANNELS + " messages");
            Set<String> received = new HashSet<>();
            consumer.deliveries.forEach(message -> received.add(text(message.getBody())));
            expect(received.size(), CHANNELS, "distinct messages");
            Set<Integer> numbers = new HashSet<>();
            channels.forEach(channel -> numbers.add(channel.getChannelNumber()));
            expect(numbers.size(), CHANNELS, "distinct channel numbers");
            for (Channel channel : channels) {
                channel.close();
            }
        }
    }

    static void not_found(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            try {
                connection.createChannel().queueDeclarePassive(names.of("missing"));
                throw new AssertionError("passive declare of a missing queue succeeded");
            } catch (IOException error) {
                expect(replyCode(error), 404, "reply code");
            }
            connection.createChannel().queueDeclare();
        }
    }

    static void precondition_failed(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            channel.queueDeclare(names.of("q"), false, false, false, null);
            try {
                channel.queueDeclare(names.of("q"), true, false, false, null);
                throw new AssertionError("redeclare with durable=true succeeded");
            } catch (IOException error) {
                expect(replyCode(error), 406, "reply code");
            }
            connection.createChannel().queueDelete(names.of("q"));
        }
    }

    static void heartbeat(String url, Names names) throws Exception {
        ConnectionFactory factory = factory(url);
        factory.setRequestedHeartbeat(HEARTBEAT);
        try (Connection connection = factory.newConnection()) {
            expect(connection.getHeartbeat(), HEARTBEAT, "negotiated heartbeat");
            Thread.sleep(TimeUnit.SECONDS.toMillis(IDLE));
            connection.createChannel().queueDeclare();
        }
    }

    static void consumer_cancel(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            String queue = channel.queueDeclare(names.of("q"), false, true, false, null).getQueue();
            Collector consumer = new Collector(channel);
            String tag = channel.basicConsume(queue, false, consumer);
            connection.createChannel().queueDelete(queue);
            waitFor(() -> !consumer.cancelled.isEmpty(), "basic.cancel from the server");
            expect(consumer.cancelled, List.of(tag), "cancelled consumer tags");
        }
    }

    static void dead_letter_ttl(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            Map<String, Object> deadLetter = deadLetterQueue(channel, names);
            Map<String, Object> withTtl = new HashMap<>(deadLetter);
            withTtl.put("x-message-ttl", QUEUE_TTL);
            channel.queueDeclare(names.of("ttl"), false, true, false, withTtl);
            channel.queueDeclare(names.of("expiring"), false, true, false, deadLetter);
            channel.basicPublish("", names.of("ttl"), null, bytes("queue-ttl"));
            var expiring = new AMQP.BasicProperties.Builder().expiration(MESSAGE_EXPIRATION).build();
            channel.basicPublish("", names.of("expiring"), expiring, bytes("message-ttl"));
            Map<String, GetResponse> dead = new HashMap<>();
            for (int n = 0; n < 2; n++) {
                GetResponse message = getDeadLetter(channel, names);
                dead.put(text(message.getBody()), message);
            }
            expect(dead.keySet(), Set.of("message-ttl", "queue-ttl"), "dead letters");
            expectDeadLettered(dead.get("queue-ttl").getProps().getHeaders(), "expired", names.of("ttl"), null);
            expectDeadLettered(dead.get("message-ttl").getProps().getHeaders(), "expired", names.of("expiring"),
                    MESSAGE_EXPIRATION);
            expect(dead.get("message-ttl").getProps().getExpiration(), null, "expiration of the dead letter");
            for (String queue : List.of("ttl", "expiring")) {
                expect(channel.queueDeclarePassive(names.of(queue)).getMessageCount(), 0, "messages left on " + queue);
            }
        }
    }

    static void dead_letter_reject(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            String queue = channel.queueDeclare(names.of("q"), false, true, false, deadLetterQueue(channel, names))
                    .getQueue();
            channel.basicPublish("", queue, null, bytes("rejected"));
            channel.basicReject(get(channel, queue, false).getEnvelope().getDeliveryTag(), false);
            GetResponse message = getDeadLetter(channel, names);
            expect(text(message.getBody()), "rejected", "dead letter");
            expectDeadLettered(message.getProps().getHeaders(), "rejected", queue, null);
        }
    }

    static void max_length(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            String drop = channel.queueDeclare(names.of("drop"), false, true, false, Map.of("x-max-length", MAX_LENGTH))
                    .getQueue();
            for (int n = 0; n <= MAX_LENGTH; n++) {
                channel.basicPublish("", drop, null, bytes("m" + n));
            }
            List<String> kept = new ArrayList<>();
            for (int n = 0; n < MAX_LENGTH; n++) {
                kept.add(text(get(channel, drop, true).getBody()));
            }
            expect(kept, numbered(1, MAX_LENGTH + 1), "messages kept by drop-head");
            expect(channel.basicGet(drop, true), null, "message left");
            Map<String, Object> arguments = Map.of("x-max-length", MAX_LENGTH, "x-overflow", "reject-publish");
            String reject = channel.queueDeclare(names.of("reject"), false, true, false, arguments).getQueue();
            expectLastNacked(channel, reject);
            expect(channel.queueDeclarePassive(reject).getMessageCount(), MAX_LENGTH, "messages in queue");
        }
    }

    static void priority(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            Map<String, Object> arguments = Map.of("x-max-priority", MAX_PRIORITY);
            String queue = channel.queueDeclare(names.of("q"), false, true, false, arguments).getQueue();
            for (Object[] publish : PRIORITY_PUBLISHES) {
                var properties = new AMQP.BasicProperties.Builder().priority((Integer) publish[0]).build();
                channel.basicPublish("", queue, properties, bytes((String) publish[1]));
            }
            Collector consumer = new Collector(channel);
            channel.basicConsume(queue, true, consumer);
            waitFor(() -> consumer.deliveries.size() == PRIORITY_EXPECTED.size(), "deliveries");
            expect(bodies(consumer), PRIORITY_EXPECTED, "delivery order");
        }
    }

    static void single_active_consumer(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel first = connection.createChannel();
            Channel second = connection.createChannel();
            Map<String, Object> arguments = Map.of("x-single-active-consumer", true);
            String queue = first.queueDeclare(names.of("q"), false, true, false, arguments).getQueue();
            Collector firstConsumer = new Collector(first);
            Collector secondConsumer = new Collector(second);
            first.basicConsume(queue, true, "first", firstConsumer);
            second.basicConsume(queue, true, "second", secondConsumer);
            for (int n = 0; n < SAC_FIRST; n++) {
                first.basicPublish("", queue, null, bytes("m" + n));
            }
            waitFor(() -> firstConsumer.deliveries.size() + secondConsumer.deliveries.size() == SAC_FIRST,
                    "deliveries");
            expect(List.of(bodies(firstConsumer), bodies(secondConsumer)), List.of(numbered(SAC_FIRST), List.of()),
                    "while the first consumes");
            first.basicCancel("first");
            for (int n = SAC_FIRST; n < SAC_FIRST + SAC_REST; n++) {
                first.basicPublish("", queue, null, bytes("m" + n));
            }
            waitFor(() -> secondConsumer.deliveries.size() == SAC_REST, "deliveries to the second consumer");
            List<List<String>> expected = List.of(numbered(SAC_FIRST), numbered(SAC_FIRST, SAC_FIRST + SAC_REST));
            expect(List.of(bodies(firstConsumer), bodies(secondConsumer)), expected, "after the first cancelled");
        }
    }

    static void alternate_exchange(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            channel.exchangeDeclare(names.of("ae"), "fanout", false, true, null);
            channel.queueDeclare(names.of("unrouted"), false, true, false, null);
            channel.queueBind(names.of("unrouted"), names.of("ae"), "");
            Map<String, Object> arguments = Map.of("alternate-exchange", names.of("ae"));
            channel.exchangeDeclare(names.of("x"), "direct", false, false, arguments);
            List<String> returned = new CopyOnWriteArrayList<>();
            channel.addReturnListener((replyCode, replyText, exchange, routingKey, properties, body) ->
                    returned.add(text(body)));
            channel.confirmSelect();
            channel.basicPublish(names.of("x"), "nowhere", true, null, bytes("unroutable"));
            channel.waitForConfirmsOrDie(TimeUnit.SECONDS.toMillis(PATIENCE));
            expect(returned, List.of(), "returned messages"); // a basic.return comes before the confirm
            GetResponse message = get(channel, names.of("unrouted"), true);
            Envelope envelope = message.getEnvelope();
            expect(List.of(envelope.getExchange(), envelope.getRoutingKey(), text(message.getBody())),
                    List.of(names.of("x"), "nowhere", "unroutable"), "message in the AE's queue");
            channel.exchangeDelete(names.of("x"));
        }
    }

    static void deduplication(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            channel.confirmSelect();
            String queue = names.of("dedup-q");
            channel.queueDeclare(queue, false, true, false, Map.of("x-message-deduplication", true));
            channel.exchangeDeclare(names.of("dedup-x"), "x-message-deduplication", false, true,
                    Map.of("x-cache-size", DEDUP_CACHE_SIZE));
            String bound = names.of("dedup-bound");
            channel.queueDeclare(bound, false, true, false, null);
            channel.queueBind(bound, names.of("dedup-x"), "");
            String[][] targets = {{"", queue, queue}, {names.of("dedup-x"), "", bound}};
            for (String[] target : targets) {
                for (String[] publish : DEDUP_PUBLISHES) {
                    AMQP.BasicProperties properties = new AMQP.BasicProperties.Builder()
                            .headers(Map.of("x-deduplication-header", publish[1])).build();
                    channel.basicPublish(target[0], target[1], properties, bytes(publish[0]));
                    // Throws if the publish is nacked.
                    channel.waitForConfirmsOrDie(TimeUnit.SECONDS.toMillis(PATIENCE));
                }
                List<String> got = new ArrayList<>();
                for (GetResponse message; (message = channel.basicGet(target[2], true)) != null; ) {
                    got.add(text(message.getBody()));
                }
                expect(got, DEDUP_EXPECTED, "messages in " + target[2]);
            }
        }
    }

    static void delayed_message(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            channel.exchangeDeclare(names.of("delayed"), "x-delayed-message", false, true,
                    Map.of("x-delayed-type", "direct"));
            String queue = names.of("delayed-q");
            channel.queueDeclare(queue, false, true, false, null);
            channel.queueBind(queue, names.of("delayed"), DELAYED_KEY);
            AMQP.BasicProperties delayed = new AMQP.BasicProperties.Builder()
                    .headers(Map.of("x-delay", DELAY)).build();
            channel.basicPublish(names.of("delayed"), DELAYED_KEY, delayed, bytes("late"));
            channel.basicPublish(names.of("delayed"), DELAYED_KEY, null, bytes("now"));
            List<Object> got = new ArrayList<>();
            for (int n = 0; n < 2; n++) {
                GetResponse message = get(channel, queue, true);
                got.add(Arrays.asList(text(message.getBody()), plain(message.getProps().getHeaders())));
            }
            expect(got, List.of(Arrays.asList("now", null), Arrays.asList("late", Map.of("x-delay", -DELAY))),
                    "deliveries (body, headers)");
        }
    }

    static void quorum_queue(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            Map<String, Object> arguments = new HashMap<>(deadLetterQueue(channel, names));
            arguments.put("x-queue-type", "quorum");
            arguments.put("x-delivery-limit", DELIVERY_LIMIT);
            String queue = channel.queueDeclare(names.of("quorum"), true, false, false, arguments).getQueue();
            channel.basicPublish("", queue, null, bytes("poison"));
            channel.basicReject(get(channel, queue, false).getEnvelope().getDeliveryTag(), true);
            GetResponse message = get(channel, queue, false);
            Map<String, Object> headers = message.getProps().getHeaders();
            Object deliveryCount = headers == null ? null : headers.get("x-delivery-count");
            expect(Arrays.asList(message.getEnvelope().isRedeliver(), deliveryCount), List.of(true, 1L),
                    "redelivered, x-delivery-count");
            channel.basicReject(message.getEnvelope().getDeliveryTag(), true);
            GetResponse dead = getDeadLetter(channel, names);
            expect(text(dead.getBody()), "poison", "dead letter");
            expectDeadLettered(dead.getProps().getHeaders(), "delivery_limit", queue, null);
            channel.queueDelete(queue);
        }
    }

    static void consumer_priority(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            String queue = channel.queueDeclare(names.of("q"), false, true, false, null).getQueue();
            Map<String, Collector> consumers = new HashMap<>();
            for (Map.Entry<String, Integer> priority : CONSUMER_PRIORITIES.entrySet()) {
                Channel consumerChannel = connection.createChannel();
                consumerChannel.basicQos(CONSUMER_PRIORITY_MESSAGES);
                Collector consumer = new Collector(consumerChannel);
                consumerChannel.basicConsume(queue, false, Map.of("x-priority", priority.getValue()), consumer);
                consumers.put(priority.getKey(), consumer);
            }
            for (int n = 0; n < CONSUMER_PRIORITY_MESSAGES; n++) {
                channel.basicPublish("", queue, null, bytes("m" + n));
            }
            waitFor(() -> consumers.get("high").deliveries.size() == CONSUMER_PRIORITY_MESSAGES, "deliveries");
            Thread.sleep(QUIET_MILLIS);
            expect(List.of(bodies(consumers.get("high")), bodies(consumers.get("low"))),
                    List.of(numbered(CONSUMER_PRIORITY_MESSAGES), List.of()), "deliveries to the high and the low");
        }
    }

    static void cc_bcc(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            channel.exchangeDeclare(names.of("x"), "direct", false, true, null);
            for (String key : CC_BCC_QUEUES) {
                channel.queueDeclare(names.of(key), false, true, false, null);
                channel.queueBind(names.of(key), names.of("x"), key);
            }
            AMQP.BasicProperties properties = new AMQP.BasicProperties.Builder().headers(CC_BCC_HEADERS).build();
            channel.basicPublish(names.of("x"), CC_BCC_QUEUES.get(0), properties, bytes("copied"));
            for (String key : CC_BCC_QUEUES) {
                GetResponse message = get(channel, names.of(key), true);
                Object headers = plain(message.getProps().getHeaders());
                expect(Arrays.asList(message.getEnvelope().getRoutingKey(), headers, text(message.getBody())),
                        List.of(CC_BCC_QUEUES.get(0), CC_BCC_DELIVERED, "copied"), "copy on queue " + key);
            }
        }
    }

    static void queue_expires(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Map<String, Object> arguments = Map.of("x-expires", QUEUE_EXPIRES);
            connection.createChannel().queueDeclare(names.of("q"), false, false, false, arguments);
            Thread.sleep(EXPIRES_WAIT_MILLIS);
            try {
                connection.createChannel().queueDeclarePassive(names.of("q"));
                throw new AssertionError("the queue outlived its x-expires");
            } catch (IOException error) {
                expect(replyCode(error), 404, "reply code");
            }
        }
    }

    static void max_length_bytes(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            Map<String, Object> arguments = Map.of("x-max-length-bytes", MAX_LENGTH_BYTES);
            String queue = channel.queueDeclare(names.of("q"), false, true, false, arguments).getQueue();
            for (String body : MAX_LENGTH_BYTES_BODIES) {
                channel.basicPublish("", queue, null, bytes(body));
            }
            List<String> kept = new ArrayList<>();
            for (int n = 0; n < 2; n++) {
                kept.add(text(get(channel, queue, true).getBody()));
            }
            expect(kept, MAX_LENGTH_BYTES_BODIES.subList(1, 3), "messages kept by drop-head");
            expect(channel.basicGet(queue, true), null, "message left");
        }
    }

    static void reject_publish_dlx(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            Map<String, Object> arguments = new HashMap<>(deadLetterQueue(channel, names));
            arguments.put("x-max-length", MAX_LENGTH);
            arguments.put("x-overflow", "reject-publish-dlx");
            String queue = channel.queueDeclare(names.of("q"), false, true, false, arguments).getQueue();
            expectLastNacked(channel, queue);
            GetResponse dead = getDeadLetter(channel, names);
            expect(text(dead.getBody()), "m" + MAX_LENGTH, "dead letter");
            expectDeadLettered(dead.getProps().getHeaders(), "maxlen", queue, null);
            expect(channel.queueDeclarePassive(queue).getMessageCount(), MAX_LENGTH, "messages in queue");
        }
    }

    @SuppressWarnings("unchecked")
    static void quorum_declare_rules(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            String queue = names.of("q");
            for (Object[] refusal : QUORUM_REFUSALS) {
                Map<String, Object> arguments = new HashMap<>((Map<String, Object>) refusal[3]);
                arguments.put("x-queue-type", "quorum");
                try {
                    connection.createChannel().queueDeclare(
                            queue, (boolean) refusal[0], (boolean) refusal[1], (boolean) refusal[2], arguments);
                    throw new AssertionError("declared a quorum queue with " + Arrays.toString(refusal));
                } catch (IOException error) {
                    AMQP.Channel.Close close = channelClose(error);
                    boolean expected = close.getReplyText().startsWith(refusal[4] + " for queue '" + queue + "'");
                    expect(List.of(close.getReplyCode(), expected), List.of(406, true), close.getReplyText());
                }
            }
            Channel channel = connection.createChannel();
            channel.queueDeclare(queue, true, false, false, Map.of("x-queue-type", "quorum"));
            channel.queueDelete(queue);
        }
    }

    /** A consumer of the stream on a channel of its own, from {@code offset}, with room for {@code count}. */
    static Collector streamReader(Connection connection, String queue, Object offset, int count) throws IOException {
        Channel channel = connection.createChannel();
        channel.basicQos(count);
        Collector consumer = new Collector(channel);
        channel.basicConsume(queue, false, Map.of("x-stream-offset", offset), consumer);
        return consumer;
    }

    /** Each delivery as [body, x-stream-offset], all acknowledged. */
    static List<List<Object>> streamRead(Collector consumer) throws IOException {
        List<List<Object>> read = new ArrayList<>();
        for (GetResponse message : consumer.deliveries) {
            read.add(List.of(text(message.getBody()), message.getProps().getHeaders().get("x-stream-offset")));
            consumer.getChannel().basicAck(message.getEnvelope().getDeliveryTag(), false);
        }
        return read;
    }

    static List<List<Object>> streamExpected(int from, int to) {
        return IntStream.range(from, to).mapToObj(n -> List.<Object>of("s" + n, (long) n)).toList();
    }

    static void stream(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            Map<String, Object> arguments = Map.of("x-queue-type", "stream");
            String queue = channel.queueDeclare(names.of("stream"), true, false, false, arguments).getQueue();
            channel.confirmSelect();
            for (int n = 0; n < STREAM_MESSAGES; n++) {
                channel.basicPublish("", queue, null, bytes("s" + n));
            }
            channel.waitForConfirmsOrDie(TimeUnit.SECONDS.toMillis(PATIENCE));
            Collector first = streamReader(connection, queue, "first", STREAM_MESSAGES);
            Collector middle = streamReader(connection, queue, STREAM_OFFSET, STREAM_MESSAGES - STREAM_OFFSET);
            waitFor(() -> first.deliveries.size() == STREAM_MESSAGES
                    && middle.deliveries.size() == STREAM_MESSAGES - STREAM_OFFSET, "deliveries");
            expect(streamRead(first), streamExpected(0, STREAM_MESSAGES), "from first");
            expect(streamRead(middle), streamExpected(STREAM_OFFSET, STREAM_MESSAGES), "from " + STREAM_OFFSET);
            Collector following = streamReader(connection, queue, "next", 1);
            channel.basicPublish("", queue, null, bytes("s" + STREAM_MESSAGES));
            waitFor(() -> following.deliveries.size() == 1, "the delivery from next");
            expect(streamRead(following), streamExpected(STREAM_MESSAGES, STREAM_MESSAGES + 1), "from next");
            channel.queueDelete(queue);
        }
    }

    static String topicRefusal(String key) {
        return "ACCESS_REFUSED - access to topic '" + key + "' in exchange '" + TOPIC_EXCHANGE + "' in vhost '/' "
                + "refused for user '" + TOPIC_USER + "'";
    }

    static void expectTopicRefused(AMQP.Channel.Close close, String key) {
        expect(List.of(close.getReplyCode(), close.getReplyText()), List.of(403, topicRefusal(key)),
                "refusal of the topic " + key);
    }

    static void topic_permissions(String url, Names names) throws Exception {
        String allowed = "allowed." + names.of("key");
        String readable = "readable." + names.of("key");
        String refused = "refused." + names.of("key");
        ConnectionFactory factory = factory(url);
        factory.setUsername(TOPIC_USER);
        factory.setPassword(TOPIC_USER);
        try (Connection connection = factory.newConnection()) {
            Channel channel = connection.createChannel();
            String queue = channel.queueDeclare(names.of("q"), false, true, false, null).getQueue();
            for (String key : List.of(allowed, readable)) {
                channel.queueBind(queue, TOPIC_EXCHANGE, key);
            }
            channel.basicPublish(TOPIC_EXCHANGE, allowed, null, bytes("allowed"));
            GetResponse message = get(channel, queue, true);
            expect(List.of(message.getEnvelope().getRoutingKey(), text(message.getBody())), List.of(allowed, "allowed"),
                    "message published with the allowed key");
            channel.basicPublish(TOPIC_EXCHANGE, readable, null, bytes("refused"));
            // The client's reader thread takes the channel.close, maybe before another method is sent.
            waitFor(() -> !channel.isOpen(), "channel.close after a publish with the key " + readable);
            expectTopicRefused((AMQP.Channel.Close) channel.getCloseReason().getReason(), readable);
            try {
                connection.createChannel().queueBind(queue, TOPIC_EXCHANGE, refused);
                throw new AssertionError("a binding with the key " + refused + " was accepted");
            } catch (IOException error) {
                expectTopicRefused(channelClose(error), refused);
            }
            expect(connection.createChannel().queueDeclarePassive(queue).getMessageCount(), 0, "messages left");
        }
    }

    static void operator_policy(String url, Names names) throws Exception {
        try (Connection connection = connect(url)) {
            Channel channel = connection.createChannel();
            Map<String, Object> arguments = Map.of("x-max-length", OPERATOR_POLICY_ARGUMENT);
            String queue = channel.queueDeclare(OPERATOR_POLICY_QUEUES + names.of("q"), false, true, false, arguments)
                    .getQueue();
            channel.confirmSelect();
            for (String body : OPERATOR_POLICY_PUBLISHES) {
                channel.basicPublish("", queue, null, bytes(body));
            }
            channel.waitForConfirmsOrDie(TimeUnit.SECONDS.toMillis(PATIENCE));
            int count = channel.queueDeclarePassive(queue).getMessageCount();
            expect(count, OPERATOR_POLICY_KEPT.size(), "messages in queue");
            List<String> kept = new ArrayList<>();
            for (int n = 0; n < OPERATOR_POLICY_KEPT.size(); n++) {
                kept.add(text(get(channel, queue, true).getBody()));
            }
            expect(kept, OPERATOR_POLICY_KEPT, "messages kept by drop-head");
            expect(channel.queueDelete(queue).getMessageCount(), 0, "messages left");
        }
    }

    static final Map<String, Scenario> SCENARIOS = new LinkedHashMap<>();

    static {
        SCENARIOS.put("connect", Scenarios::connect);
        SCENARIOS.put("auth_refused", Scenarios::auth_refused);
        SCENARIOS.put("routing", Scenarios::routing);
        SCENARIOS.put("ack", Scenarios::ack);
        SCENARIOS.put("requeue", Scenarios::requeue);
        SCENARIOS.put("discard", Scenarios::discard);
        SCENARIOS.put("prefetch", Scenarios::prefetch);
        SCENARIOS.put("confirms", Scenarios::confirms);
        SCENARIOS.put("mandatory", Scenarios::mandatory);
        SCENARIOS.put("rpc", Scenarios::rpc);
        SCENARIOS.put("large_message", Scenarios::large_message);
        SCENARIOS.put("many_channels", Scenarios::many_channels);
        SCENARIOS.put("not_found", Scenarios::not_found);
        SCENARIOS.put("precondition_failed", Scenarios::precondition_failed);
        SCENARIOS.put("heartbeat", Scenarios::heartbeat);
        SCENARIOS.put("consumer_cancel", Scenarios::consumer_cancel);
        SCENARIOS.put("dead_letter_ttl", Scenarios::dead_letter_ttl);
        SCENARIOS.put("dead_letter_reject", Scenarios::dead_letter_reject);
        SCENARIOS.put("max_length", Scenarios::max_length);
        SCENARIOS.put("priority", Scenarios::priority);
        SCENARIOS.put("single_active_consumer", Scenarios::single_active_consumer);
        SCENARIOS.put("alternate_exchange", Scenarios::alternate_exchange);
        SCENARIOS.put("quorum_queue", Scenarios::quorum_queue);
        SCENARIOS.put("consumer_priority", Scenarios::consumer_priority);
        SCENARIOS.put("cc_bcc", Scenarios::cc_bcc);
        SCENARIOS.put("queue_expires", Scenarios::queue_expires);
        SCENARIOS.put("max_length_bytes", Scenarios::max_length_bytes);
        SCENARIOS.put("reject_publish_dlx", Scenarios::reject_publish_dlx);
        SCENARIOS.put("quorum_declare_rules", Scenarios::quorum_declare_rules);
        SCENARIOS.put("stream", Scenarios::stream);
        SCENARIOS.put("topic_permissions", Scenarios::topic_permissions);
        SCENARIOS.put("operator_policy", Scenarios::operator_policy);
        SCENARIOS.put("deduplication", Scenarios::deduplication);
        SCENARIOS.put("delayed_message", Scenarios::delayed_message);
    }

    static String json(String text) {
        StringBuilder quoted = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            if (c == '"' || c == '\\') {
                quoted.append('\\').append(c);
            } else if (c < 0x20) {
                quoted.append(String.format("\\u%04x", (int) c));
            } else {
                quoted.append(c);
            }
        }
        return quoted.append('"').toString();
    }

    static String describe(Throwable error) {
        String message = error.getMessage();
        if (message == null && error.getCause() != null) {
            message = error.getCause().getMessage();
        }
        return error.getClass().getSimpleName() + ": " + message;
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> options = new LinkedHashMap<>();
        List<String> names = new ArrayList<>();
        for (String arg : args) {
            if (arg.startsWith("--")) {
                String[] option = arg.substring(2).split("=", 2);
                options.put(option[0], option.length > 1 ? option[1] : "");
            } else {
                names.add(arg);
            }
        }
        if (options.containsKey("list")) {
            SCENARIOS.keySet().forEach(System.out::println);
            return;
        }
        String url = options.get("url");
        String prefix = options.getOrDefault("prefix", "interop");
        String timeout = options.getOrDefault("timeout", "30");
        long timeoutMillis = (long) (Double.parseDouble(timeout) * 1000);
        ExecutorService threads = Executors.newCachedThreadPool(task -> {
            Thread thread = new Thread(task);
            thread.setDaemon(true);
            return thread;
        });
        for (String name : names) {
            Future<?> run = threads.submit(() -> {
                SCENARIOS.get(name).run(url, new Names(prefix + "." + name));
                return null;
            });
            String detail = "";
            try {
                run.get(timeoutMillis, TimeUnit.MILLISECONDS);
            } catch (ExecutionException error) {
                detail = describe(error.getCause());
            } catch (TimeoutException error) {
                run.cancel(true);
                detail = "timed out after " + timeout + " s";
            }
            System.out.println("INTEROP-RESULT {\"scenario\": " + json(name) + ", \"ok\": " + detail.isEmpty()
                    + ", \"detail\": " + json(detail) + "}");
            System.out.flush();
        }
        System.exit(0);
    }
}
