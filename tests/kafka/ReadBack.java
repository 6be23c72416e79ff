// Independent read-back of records from Kafka, built on Apache Kafka's own Java client only,
// so that what the project produced is checked by code that shares nothing with it.
//
// Run in source-launch mode (no build step), with the jars that scripts/kafka.sh caches:
//
//   java -cp "$KAFKA_CLASSPATH" tests/kafka/ReadBack.java <bootstrap> <topic> <partition> <offset> <count> [timeout_ms]
//       Assigns that one partition (no consumer group, nothing committed), seeks to <offset> and reads
//       exactly <count> records. On success prints one JSON line per record to stdout, in offset order:
//         {"topic":"t","partition":0,"offset":5,"key_b64":"..."|null,"value_b64":"..."|null,
//          "headers":[{"key":"k","value_b64":"..."|null}]}
//       (headers in record order). If fewer than <count> arrive within timeout_ms (default 20000),
//       prints nothing to stdout, reports on stderr (with the records that did arrive) and exits 1.
//       An offset past the end is waited for (records may still be in flight), not reset.
//
//   java -cp "$KAFKA_CLASSPATH" tests/kafka/ReadBack.java --until <bootstrap> <topic> <partition> <offset> <end_offset> [timeout_ms]
//       As above, but reads every record from <offset> until the consumer's position reaches
//       <end_offset> (from --count): with read_committed that skips transaction markers and aborted
//       records, which take offsets but are not delivered. Exits 1 if the position does not get there
//       within timeout_ms.
//
//   java -cp "$KAFKA_CLASSPATH" tests/kafka/ReadBack.java --count <bootstrap> <topic> [timeout_ms]
//       Prints {"partition":N,"begin_offset":B,"end_offset":M} per partition, then
//       {"topic":"t","total":T} where T is the sum of end-begin (records plus any transaction markers).
//       Exits 1 when the topic does not exist.
//
//   java -cp "$KAFKA_CLASSPATH" tests/kafka/ReadBack.java --leaders <bootstrap> <topic> [timeout_ms]
//       Prints {"partition":N,"leader":ID,"replicas":[..],"isr":[..]} per partition, from the cluster's
//       metadata (leader -1 when the partition has none). Exits 1 when the topic does not exist.
//
// Reads with isolation.level=read_committed (override: -Dreadback.isolation=read_uncommitted).
// Never creates topics. Client logging: WARN and above to stderr (unless -Dlog4j2.configurationFile
// is given). Exit codes: 0 ok, 1 failure (missing records, missing topic, client error), 2 usage.

import java.io.BufferedWriter;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetOutOfRangeException;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.appender.ConsoleAppender;
import org.apache.logging.log4j.core.config.Configurator;
import org.apache.logging.log4j.core.config.builder.api.AppenderComponentBuilder;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilder;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilderFactory;
import org.apache.logging.log4j.core.config.builder.impl.BuiltConfiguration;

public class ReadBack {
    private static final long DEFAULT_TIMEOUT_MS = 20000;

    public static void main(String[] args) {
        // Before any Kafka class logs: log4j2's default config would print to stdout.
        quietLogging();
        int rc;
        try {
            if (args.length >= 1 && args[0].equals("--until")) {
                if (args.length < 6 || args.length > 7) usage();
                int partition = (int) parseLong(args[3], "partition");
                long offset = parseLong(args[4], "offset");
                long end = parseLong(args[5], "end_offset");
                long timeout = args.length == 7 ? parseLong(args[6], "timeout_ms") : DEFAULT_TIMEOUT_MS;
                if (partition < 0 || offset < 0 || end < offset || timeout < 0) usage();
                rc = readUntil(args[1], args[2], partition, offset, end, timeout);
            } else if (args.length >= 1 && args[0].equals("--leaders")) {
                if (args.length < 3 || args.length > 4) usage();
                rc = leaders(args[1], args[2], args.length == 4 ? parseLong(args[3], "timeout_ms") : DEFAULT_TIMEOUT_MS);
            } else if (args.length >= 1 && args[0].equals("--count")) {
                if (args.length < 3 || args.length > 4) usage();
                rc = count(args[1], args[2], args.length == 4 ? parseLong(args[3], "timeout_ms") : DEFAULT_TIMEOUT_MS);
            } else {
                if (args.length < 5 || args.length > 6) usage();
                int partition = (int) parseLong(args[2], "partition");
                long offset = parseLong(args[3], "offset");
                long count = parseLong(args[4], "count");
                long timeout = args.length == 6 ? parseLong(args[5], "timeout_ms") : DEFAULT_TIMEOUT_MS;
                if (partition < 0 || offset < 0 || count < 0 || timeout < 0) usage();
                rc = read(args[0], args[1], partition, offset, count, timeout);
            }
        } catch (Exception e) {
            System.err.println("ReadBack: " + e);
            rc = 1;
        }
        System.exit(rc);
    }

    static int read(String bootstrap, String topic, int partition, long offset, long count, long timeoutMs) {
        TopicPartition tp = new TopicPartition(topic, partition);
        List<String> lines = new ArrayList<>();
        long deadline = System.currentTimeMillis() + timeoutMs;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props(bootstrap))) {
            consumer.assign(Collections.singletonList(tp));
            consumer.seek(tp, offset);
            while (lines.size() < count) {
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) break;
                ConsumerRecords<byte[], byte[]> records;
                try {
                    records = consumer.poll(Duration.ofMillis(Math.min(left, 500)));
                } catch (OffsetOutOfRangeException e) {
                    // Offset beyond the log end (not produced yet) or before its start (deleted):
                    // keep the requested position and retry until the deadline.
                    sleepQuietly(Math.min(100, Math.max(1, deadline - System.currentTimeMillis())));
                    consumer.seek(tp, offset + lines.size());
                    continue;
                }
                for (ConsumerRecord<byte[], byte[]> r : records.records(tp)) {
                    if (lines.size() >= count) break;
                    lines.add(toJson(r));
                }
            }
        }
        if (lines.size() < count) {
            System.err.printf("ReadBack: got %d of %d records from %s partition %d starting at offset %d within %d ms%n",
                    lines.size(), count, topic, partition, offset, timeoutMs);
            for (String l : lines) System.err.println("ReadBack: received " + l);
            return 1;
        }
        PrintWriter out = stdout();
        for (String l : lines) out.println(l);
        out.flush();
        return out.checkError() ? 1 : 0;
    }

    static int readUntil(String bootstrap, String topic, int partition, long offset, long end, long timeoutMs) {
        TopicPartition tp = new TopicPartition(topic, partition);
        List<String> lines = new ArrayList<>();
        long deadline = System.currentTimeMillis() + timeoutMs;
        long position = offset;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props(bootstrap))) {
            consumer.assign(Collections.singletonList(tp));
            consumer.seek(tp, offset);
            while (position < end) {
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) break;
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(Math.min(left, 500))).records(tp)) {
                    if (r.offset() < end) lines.add(toJson(r));
                }
                position = consumer.position(tp, Duration.ofMillis(Math.max(1, deadline - System.currentTimeMillis())));
            }
        }
        if (position < end) {
            System.err.printf("ReadBack: reached offset %d of %d in %s partition %d (from %d, %d records) within %d ms%n",
                    position, end, topic, partition, offset, lines.size(), timeoutMs);
            return 1;
        }
        PrintWriter out = stdout();
        for (String l : lines) out.println(l);
        out.flush();
        return out.checkError() ? 1 : 0;
    }

    static int count(String bootstrap, String topic, long timeoutMs) {
        Duration timeout = Duration.ofMillis(timeoutMs);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props(bootstrap))) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, timeout);
            if (infos == null || infos.isEmpty()) {
                System.err.println("ReadBack: topic not found: " + topic);
                return 1;
            }
            List<TopicPartition> tps = new ArrayList<>();
            for (PartitionInfo pi : infos) tps.add(new TopicPartition(topic, pi.partition()));
            tps.sort((a, b) -> Integer.compare(a.partition(), b.partition()));
            Map<TopicPartition, Long> begin = consumer.beginningOffsets(tps, timeout);
            Map<TopicPartition, Long> end = consumer.endOffsets(tps, timeout);
            PrintWriter out = stdout();
            long total = 0;
            for (TopicPartition tp : tps) {
                long b = begin.get(tp), e = end.get(tp);
                total += e - b;
                out.printf("{\"partition\":%d,\"begin_offset\":%d,\"end_offset\":%d}%n", tp.partition(), b, e);
            }
            out.printf("{\"topic\":%s,\"total\":%d}%n", jsonString(topic), total);
            out.flush();
            return out.checkError() ? 1 : 0;
        }
    }

    static int leaders(String bootstrap, String topic, long timeoutMs) {
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props(bootstrap))) {
            List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofMillis(timeoutMs));
            if (infos == null || infos.isEmpty()) {
                System.err.println("ReadBack: topic not found: " + topic);
                return 1;
            }
            List<PartitionInfo> sorted = new ArrayList<>(infos);
            sorted.sort((a, b) -> Integer.compare(a.partition(), b.partition()));
            PrintWriter out = stdout();
            for (PartitionInfo pi : sorted) {
                out.printf("{\"partition\":%d,\"leader\":%d,\"replicas\":%s,\"isr\":%s}%n", pi.partition(),
                        pi.leader() == null ? -1 : pi.leader().id(), ids(pi.replicas()), ids(pi.inSyncReplicas()));
            }
            out.flush();
            return out.checkError() ? 1 : 0;
        }
    }

    static String ids(org.apache.kafka.common.Node[] nodes) {
        StringBuilder b = new StringBuilder("[");
        for (int i = 0; nodes != null && i < nodes.length; i++) b.append(i > 0 ? "," : "").append(nodes[i].id());
        return b.append(']').toString();
    }

    static Properties props(String bootstrap) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "topicgate-readback");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        // A reader must not create the topic it is asked about (the test broker auto-creates).
        p.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");
        // "none": a seek past the end raises instead of silently jumping to earliest/latest.
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, System.getProperty("readback.isolation", "read_committed"));
        p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "100");
        return p;
    }

    static String toJson(ConsumerRecord<byte[], byte[]> r) {
        StringBuilder sb = new StringBuilder(128);
        sb.append("{\"topic\":").append(jsonString(r.topic()))
          .append(",\"partition\":").append(r.partition())
          .append(",\"offset\":").append(r.offset())
          .append(",\"key_b64\":").append(b64(r.key()))
          .append(",\"value_b64\":").append(b64(r.value()))
          .append(",\"headers\":[");
        boolean first = true;
        for (Header h : r.headers()) {
            if (!first) sb.append(',');
            first = false;
            sb.append("{\"key\":").append(jsonString(h.key())).append(",\"value_b64\":").append(b64(h.value())).append('}');
        }
        return sb.append("]}").toString();
    }

    static String b64(byte[] b) {
        return b == null ? "null" : "\"" + Base64.getEncoder().encodeToString(b) + "\"";
    }

    // JSON string literal, ASCII-only output (non-ASCII as \\uXXXX), so the stdout charset never matters.
    static String jsonString(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': sb.append("\\\""); break;
                case '\\': sb.append("\\\\"); break;
                case '\n': sb.append("\\n"); break;
                case '\r': sb.append("\\r"); break;
                case '\t': sb.append("\\t"); break;
                case '\b': sb.append("\\b"); break;
                case '\f': sb.append("\\f"); break;
                default:
                    if (c < 0x20 || c > 0x7e) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
            }
        }
        return sb.append('"').toString();
    }

    static PrintWriter stdout() {
        return new PrintWriter(new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8)));
    }

    static void quietLogging() {
        if (System.getProperty("log4j2.configurationFile") != null || System.getProperty("log4j.configurationFile") != null) {
            return;
        }
        ConfigurationBuilder<BuiltConfiguration> b = ConfigurationBuilderFactory.newConfigurationBuilder();
        b.setStatusLevel(Level.ERROR);
        AppenderComponentBuilder err = b.newAppender("stderr", "Console")
                .addAttribute("target", ConsoleAppender.Target.SYSTEM_ERR);
        err.add(b.newLayout("PatternLayout").addAttribute("pattern", "ReadBack log: %p %m (%c{1})%n"));
        b.add(err);
        b.add(b.newRootLogger(Level.WARN).add(b.newAppenderRef("stderr")));
        Configurator.initialize(b.build());
    }

    static long parseLong(String s, String what) {
        try {
            return Long.parseLong(s);
        } catch (NumberFormatException e) {
            System.err.println("ReadBack: " + what + " is not a number: " + s);
            System.exit(2);
            return 0;
        }
    }

    static void sleepQuietly(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static void usage() {
        System.err.println("usage: ReadBack.java <bootstrap> <topic> <partition> <offset> <count> [timeout_ms]\n"
                + "       ReadBack.java --until <bootstrap> <topic> <partition> <offset> <end_offset> [timeout_ms]\n"
                + "       ReadBack.java --count <bootstrap> <topic> [timeout_ms]\n"
                + "       ReadBack.java --leaders <bootstrap> <topic> [timeout_ms]");
        System.exit(2);
    }
}
