// make bench's independent view of the broker, through Kafka's own Admin client (not topicgate's code).
//
//   java -cp "$KAFKA_CLASSPATH" bench/KafkaTopics.java create <bootstrap> <partitions> <topic>...
//       creates the topics (replication factor 1); fails if any exists already.
//   java -cp "$KAFKA_CLASSPATH" bench/KafkaTopics.java count <bootstrap> <topic>...
//       prints one JSON object {"<topic>": <records>, ...}: the sum over partitions of latest minus
//       earliest offset: nothing is deleted during a run, and producers that are not transactional
//       write no control records, so this is the number of records written.
//   java -cp "$KAFKA_CLASSPATH" bench/KafkaTopics.java first-value <bootstrap> <topic> <file>
//       writes the value of the first record found on the topic to <file>, byte for byte, and
//       prints {"bytes": <length>}.
// Exit codes: 0 ok, 1 failure, 2 usage. Every call has a 30 s deadline.
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class KafkaTopics {
    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: KafkaTopics create <bootstrap> <partitions> <topic>... | count <bootstrap> <topic>... | first-value <bootstrap> <topic> <file>");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        try (Admin admin = Admin.create(props)) {
            switch (args[0]) {
                case "create" -> create(admin, Integer.parseInt(args[2]), List.of(args).subList(3, args.length));
                case "count" -> count(admin, List.of(args).subList(2, args.length));
                case "first-value" -> firstValue(admin, args[1], args[2], Path.of(args[3]));
                default -> {
                    System.err.println("unknown command " + args[0]);
                    System.exit(2);
                }
            }
        }
    }

    static void create(Admin admin, int partitions, List<String> topics) throws Exception {
        List<NewTopic> news = new ArrayList<>();
        for (String t : topics) {
            news.add(new NewTopic(t, partitions, (short) 1));
        }
        admin.createTopics(news).all().get(30, TimeUnit.SECONDS);
        System.out.println("{\"created\":" + topics.size() + "}");
    }

    static void firstValue(Admin admin, String bootstrap, String topic, Path file) throws Exception {
        TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS).get(topic);
        List<TopicPartition> parts = new ArrayList<>();
        d.partitions().forEach(p -> parts.add(new TopicPartition(topic, p.partition())));
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 1);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    Files.write(file, r.value());
                    System.out.println("{\"bytes\":" + r.value().length + "}");
                    return;
                }
            }
        }
        throw new IllegalStateException("no record on " + topic + " within 30 s");
    }

    static void count(Admin admin, List<String> topics) throws Exception {
        Map<String, TopicDescription> desc = admin.describeTopics(topics).allTopicNames().get(30, TimeUnit.SECONDS);
        Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
        Map<TopicPartition, OffsetSpec> earliest = new HashMap<>();
        for (TopicDescription d : desc.values()) {
            d.partitions().forEach(p -> {
                latest.put(new TopicPartition(d.name(), p.partition()), OffsetSpec.latest());
                earliest.put(new TopicPartition(d.name(), p.partition()), OffsetSpec.earliest());
            });
        }
        var hi = admin.listOffsets(latest).all().get(30, TimeUnit.SECONDS);
        var lo = admin.listOffsets(earliest).all().get(30, TimeUnit.SECONDS);
        Map<String, Long> totals = new HashMap<>();
        for (String t : topics) {
            totals.put(t, 0L);
        }
        hi.forEach((tp, info) -> totals.merge(tp.topic(), info.offset() - lo.get(tp).offset(), Long::sum));
        StringBuilder out = new StringBuilder("{");
        for (int i = 0; i < topics.size(); i++) {
            out.append(i == 0 ? "" : ",").append('"').append(topics.get(i)).append("\":").append(totals.get(topics.get(i)));
        }
        System.out.println(out.append('}'));
    }
}
