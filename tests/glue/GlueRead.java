// AWS's own reader of Glue-framed Protobuf, Avro and JSON Schema records: decodes records from Kafka with AWS's
// GlueSchemaRegistryKafkaDeserializer (schema-registry-serde 1.1.27), which fetches the schema
// version named in each record from the Glue API (moto in the tests) and picks the message type by
// the record's message index with AWS's own rule. Nothing of the project's code is involved.
//
// Run in source-launch mode (no build step), with the jars that scripts/glue-reader.sh caches:
//
//   java -cp "$GLUE_READER_CLASSPATH" tests/glue/GlueRead.java <bootstrap> <topic>[,<topic>...] <count> [timeout_ms]
//
// Reads all partitions of the topics from their beginning (no consumer group, nothing committed)
// until <count> records have arrived in all, then prints one JSON line per record to stdout, by
// topic, partition and offset:
//   {"topic":"t","partition":0,"offset":5,"value_bytes":133,"compression":0|5,
//    "type":"gc.v1.Shipment","message":{...}              decoded: full name, proto3 JSON (proto field names)
//    | "type":"gc.v1.Order","message":{...},"same_as_aws_avro":true   Avro GenericRecord (GenericData JSON)
//    | "type":"json","message":{...}                     JSON Schema: the payload of JsonDataWithSchema
//    ,"same_as_aws_serializer":true|null                 Avro and JSON, with GLUE_READER_REGISTRY set: AWS's
//                                                          serializer writes the decoded value to the same bytes
//    | "error":"..."                                       AWS's deserializer threw
//    ,"aws_zlib_bytes":115|null,"same_as_aws_zlib":true|null
//    ,"key":{"key_bytes":40,"type":...,"message":...,"same_as_aws_serializer":...}|null}
// A key is decoded when it is Glue-framed (its first byte Glue's header version 3, longer than the
// header): by AWS's deserializer configured for keys (configure(props, true)), and, with
// GLUE_READER_REGISTRY, written again by AWS's serializer for keys under the schema <topic>-key
// (the core's default key_schema.name_template); its fields are those of a value.
// For a zlib record (compression byte 5), aws_zlib_bytes is the size of the record AWS's serializer
// writes for the same body: the body inflated and compressed again with AWS's own compression handler
// (java.util.zip.Deflater at its defaults), plus the 18 header bytes; same_as_aws_zlib says whether
// those bytes equal the record's.
// The Glue API comes from AWS_ENDPOINT_URL_GLUE, region and credentials from the AWS SDK's usual
// environment (AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: .run/glue.env).
// Exit codes: 0 all <count> records read (decoded or not), 1 fewer arrived in time or a client error, 2 usage.

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import com.amazonaws.services.schemaregistry.common.GlueSchemaRegistryDefaultCompression;
import com.amazonaws.services.schemaregistry.serializers.json.JsonDataWithSchema;
import com.amazonaws.services.schemaregistry.utils.AvroRecordType;
import com.amazonaws.services.schemaregistry.deserializers.GlueSchemaRegistryKafkaDeserializer;
import com.amazonaws.services.schemaregistry.serializers.GlueSchemaRegistryKafkaSerializer;
import com.amazonaws.services.schemaregistry.utils.AWSSchemaRegistryConstants;
import com.amazonaws.services.schemaregistry.utils.ProtobufMessageType;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import java.io.ByteArrayOutputStream;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class GlueRead {
    static final int HEADER = 18; // version, compression, 16-byte schema version UUID

    public static void main(String[] args) throws Exception {
        if (args.length < 3 || args.length > 4) {
            System.err.println("usage: GlueRead <bootstrap> <topic> <count> [timeout_ms]");
            System.exit(2);
        }
        // slf4j-simple: warnings and errors only, to stderr (before the first logger is made).
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        }
        String bootstrap = args[0];
        List<String> topics = Arrays.asList(args[1].split(","));
        int count = Integer.parseInt(args[2]);
        long timeoutMs = args.length > 3 ? Long.parseLong(args[3]) : 30000;
        String endpoint = System.getenv("AWS_ENDPOINT_URL_GLUE");
        String region = System.getenv("AWS_REGION");
        if (endpoint == null || endpoint.isEmpty() || region == null || region.isEmpty()) {
            System.err.println("GlueRead: AWS_ENDPOINT_URL_GLUE and AWS_REGION must be set (.run/glue.env)");
            System.exit(2);
        }

        Map<String, Object> serde = new HashMap<>();
        serde.put(AWSSchemaRegistryConstants.AWS_ENDPOINT, endpoint);
        serde.put(AWSSchemaRegistryConstants.AWS_REGION, region);
        serde.put(AWSSchemaRegistryConstants.PROTOBUF_MESSAGE_TYPE, ProtobufMessageType.DYNAMIC_MESSAGE.getName());
        serde.put(AWSSchemaRegistryConstants.AVRO_RECORD_TYPE, AvroRecordType.GENERIC_RECORD.getName());
        GlueSchemaRegistryKafkaDeserializer glue = new GlueSchemaRegistryKafkaDeserializer();
        glue.configure(serde, false);
        GlueSchemaRegistryKafkaDeserializer glueKeys = new GlueSchemaRegistryKafkaDeserializer();
        glueKeys.configure(serde, true);

        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.ALLOW_AUTO_CREATE_TOPICS_CONFIG, "false");
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> consumer =
                 new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            long deadline = System.currentTimeMillis() + timeoutMs;
            List<TopicPartition> tps = new ArrayList<>();
            for (String topic : topics) {
                List<PartitionInfo> parts = null;
                while (parts == null || parts.isEmpty()) {
                    parts = consumer.partitionsFor(topic, Duration.ofMillis(Math.max(1, deadline - System.currentTimeMillis())));
                    if ((parts == null || parts.isEmpty()) && System.currentTimeMillis() > deadline) {
                        System.err.println("GlueRead: topic " + topic + " not found");
                        System.exit(1);
                    }
                }
                for (PartitionInfo pi : parts) tps.add(new TopicPartition(topic, pi.partition()));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            while (got.size() < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) got.add(r);
            }
        }
        if (got.size() < count) {
            System.err.println("GlueRead: " + got.size() + " of " + count + " records arrived within " + timeoutMs + " ms");
            System.exit(1);
        }
        got.sort(Comparator.<ConsumerRecord<byte[], byte[]>, String>comparing(ConsumerRecord::topic)
            .thenComparingInt(ConsumerRecord::partition).thenComparingLong(ConsumerRecord::offset));

        JsonFormat.Printer printer = JsonFormat.printer().preservingProtoFieldNames().omittingInsignificantWhitespace();
        GlueSchemaRegistryDefaultCompression awsZlib = new GlueSchemaRegistryDefaultCompression();
        StringBuilder out = new StringBuilder();
        for (ConsumerRecord<byte[], byte[]> r : got) {
            byte[] v = r.value();
            StringBuilder line = new StringBuilder();
            line.append("{\"topic\":").append(quote(r.topic())).append(",\"partition\":").append(r.partition()).append(",\"offset\":").append(r.offset())
                .append(",\"value_bytes\":").append(v == null ? -1 : v.length)
                .append(",\"compression\":").append(v == null || v.length < 2 ? -1 : v[1] & 0xff);
            describe(line, glue, serde, r.topic(), r.topic(), false, v, printer, awsZlib);
            if (v != null && v.length > HEADER && (v[1] & 0xff) == 5) {
                byte[] body = awsZlib.decompress(v, HEADER, v.length - HEADER);
                byte[] again = awsZlib.compress(body);
                byte[] ours = Arrays.copyOfRange(v, HEADER, v.length);
                line.append(",\"aws_zlib_bytes\":").append(HEADER + again.length)
                    .append(",\"same_as_aws_zlib\":").append(Arrays.equals(ours, again));
            } else {
                line.append(",\"aws_zlib_bytes\":null,\"same_as_aws_zlib\":null");
            }
            byte[] k = r.key();
            if (k != null && k.length > HEADER && k[0] == 3) {
                line.append(",\"key\":{\"key_bytes\":").append(k.length);
                describe(line, glueKeys, serde, r.topic(), r.topic() + "-key", true, k, printer, awsZlib);
                line.append("}");
            } else {
                line.append(",\"key\":null");
            }
            out.append(line).append("}\n");
        }
        glue.close();
        glueKeys.close();
        System.out.print(out);
        System.out.flush();
        // The SDK's and the client's non-daemon threads must not keep the JVM alive.
        System.exit(0);
    }

    /**
     * Appends what AWS's deserializer d makes of v (a value, or with isKey a key): its type and
     * message, Avro's and AWS's serializer's bytes compared (schemaName: the Glue schema the
     * serializer looks the definition up under), or the error it threw.
     */
    static void describe(StringBuilder line, GlueSchemaRegistryKafkaDeserializer d, Map<String, Object> serde, String topic,
                         String schemaName, boolean isKey, byte[] v, JsonFormat.Printer printer,
                         GlueSchemaRegistryDefaultCompression awsZlib) {
        try {
            Object decoded = d.deserialize(topic, v);
            if (decoded instanceof GenericRecord) {
                // Avro: GenericData's JSON rendering (union values bare, enums as their symbols);
                // same_as_aws_avro: Avro's own binary writer (what AWS's serializer uses) gives
                // back the record's body byte for byte.
                GenericRecord g = (GenericRecord) decoded;
                ByteArrayOutputStream buf = new ByteArrayOutputStream();
                BinaryEncoder enc = EncoderFactory.get().directBinaryEncoder(buf, null);
                new GenericDatumWriter<GenericRecord>(g.getSchema()).write(g, enc);
                enc.flush();
                byte[] body = (v[1] & 0xff) == 5 ? awsZlib.decompress(v, HEADER, v.length - HEADER)
                    : Arrays.copyOfRange(v, HEADER, v.length);
                line.append(",\"type\":").append(quote(g.getSchema().getFullName()))
                    .append(",\"message\":").append(GenericData.get().toString(g))
                    .append(",\"same_as_aws_avro\":").append(Arrays.equals(body, buf.toByteArray()));
            } else if (decoded instanceof JsonDataWithSchema) {
                // JSON Schema: the payload text as AWS's deserializer hands it over.
                JsonDataWithSchema j = (JsonDataWithSchema) decoded;
                line.append(",\"type\":\"json\",\"message\":").append(j.getPayload());
            }
            if (decoded instanceof GenericRecord || decoded instanceof JsonDataWithSchema) {
                awsSerializer(line, serde, topic, schemaName, isKey, v, decoded);
            } else {
                Message m = (Message) decoded;
                line.append(",\"type\":").append(quote(m.getDescriptorForType().getFullName()))
                    .append(",\"message\":").append(printer.print(m));
            }
        } catch (Exception e) {
            line.append(",\"error\":").append(quote(e.toString() + (e.getCause() == null ? "" : " / " + e.getCause())));
        }
    }

    /**
     * With GLUE_READER_REGISTRY set: AWS's own serializer writes the decoded value again, finding the
     * schema version by its definition under the topic's schema name (no auto-registration) with
     * the record's compression; same_as_aws_serializer says whether its bytes equal the record's.
     */
    static void awsSerializer(StringBuilder line, Map<String, Object> serde, String topic, String schemaName, boolean isKey,
                              byte[] v, Object decoded) {
        String registry = System.getenv("GLUE_READER_REGISTRY");
        if (registry == null || registry.isEmpty()) {
            line.append(",\"same_as_aws_serializer\":null");
            return;
        }
        Map<String, Object> conf = new HashMap<>(serde);
        conf.put(AWSSchemaRegistryConstants.REGISTRY_NAME, registry);
        conf.put(AWSSchemaRegistryConstants.SCHEMA_NAME, schemaName);
        conf.put(AWSSchemaRegistryConstants.DATA_FORMAT, decoded instanceof GenericRecord ? "AVRO" : "JSON");
        conf.put(AWSSchemaRegistryConstants.SCHEMA_AUTO_REGISTRATION_SETTING, "false");
        conf.put(AWSSchemaRegistryConstants.COMPRESSION_TYPE, (v[1] & 0xff) == 5
            ? AWSSchemaRegistryConstants.COMPRESSION.ZLIB.name() : AWSSchemaRegistryConstants.COMPRESSION.NONE.name());
        try (GlueSchemaRegistryKafkaSerializer ser = new GlueSchemaRegistryKafkaSerializer()) {
            ser.configure(conf, isKey);
            byte[] theirs = ser.serialize(topic, decoded);
            line.append(",\"aws_serializer_bytes\":").append(theirs.length)
                .append(",\"same_as_aws_serializer\":").append(Arrays.equals(v, theirs));
        } catch (Exception e) {
            line.append(",\"same_as_aws_serializer\":null,\"aws_serializer_error\":")
                .append(quote(e.toString() + (e.getCause() == null ? "" : " / " + e.getCause())));
        }
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
            }
        }
        return b.append('"').toString();
    }
}
