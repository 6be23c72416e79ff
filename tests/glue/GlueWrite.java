// AWS's own writer of Glue-framed Avro records: AWS's GlueSchemaRegistryKafkaSerializer
// (schema-registry-serde 1.1.27) finds the schema version of the given definition under the given
// Glue schema (GetSchemaByDefinition, no auto-registration) and frames each record with that
// version's UUID; Kafka's own producer writes them. Nothing of the project's code is involved.
//
// Run in source-launch mode (no build step), with the jars that scripts/glue-reader.sh caches:
//
//   java -cp "$GLUE_READER_CLASSPATH" tests/glue/GlueWrite.java <bootstrap> <topic> <registry> <schema name> <definition file> <partition> <json value>...
//
// Each <json value> is read by Avro's JSON decoder for the definition (Avro's JSON encoding:
// a union branch as {"type": value}). Prints one JSON line per record, in order:
//   {"partition":0,"offset":5,"value_bytes":40}
// The Glue API comes from AWS_ENDPOINT_URL_GLUE, region and credentials from the AWS SDK's usual
// environment (.run/glue.env). Exit codes: 0 all written, 1 a client error, 2 usage.

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;

import com.amazonaws.services.schemaregistry.serializers.GlueSchemaRegistryKafkaSerializer;
import com.amazonaws.services.schemaregistry.utils.AWSSchemaRegistryConstants;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.DecoderFactory;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class GlueWrite {
    public static void main(String[] args) throws Exception {
        if (args.length < 7) {
            System.err.println("usage: GlueWrite <bootstrap> <topic> <registry> <schema name> <definition file> <partition> <json value>...");
            System.exit(2);
        }
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        }
        String bootstrap = args[0], topic = args[1], registry = args[2], schemaName = args[3];
        Schema schema = new Schema.Parser().parse(Files.readString(Path.of(args[4])));
        int partition = Integer.parseInt(args[5]);

        Map<String, Object> conf = new HashMap<>();
        conf.put(AWSSchemaRegistryConstants.AWS_ENDPOINT, System.getenv("AWS_ENDPOINT_URL_GLUE"));
        conf.put(AWSSchemaRegistryConstants.AWS_REGION, System.getenv().getOrDefault("AWS_REGION", "us-east-1"));
        conf.put(AWSSchemaRegistryConstants.REGISTRY_NAME, registry);
        conf.put(AWSSchemaRegistryConstants.SCHEMA_NAME, schemaName);
        conf.put(AWSSchemaRegistryConstants.DATA_FORMAT, "AVRO");
        conf.put(AWSSchemaRegistryConstants.SCHEMA_AUTO_REGISTRATION_SETTING, "false");

        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        GenericDatumReader<GenericRecord> reader = new GenericDatumReader<>(schema);
        try (GlueSchemaRegistryKafkaSerializer ser = new GlueSchemaRegistryKafkaSerializer();
             KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            ser.configure(conf, false);
            for (int i = 6; i < args.length; i++) {
                GenericRecord value = reader.read(null, DecoderFactory.get().jsonDecoder(schema, args[i]));
                byte[] bytes = ser.serialize(topic, value);
                RecordMetadata md = producer.send(new ProducerRecord<>(topic, partition, null, bytes)).get();
                System.out.println("{\"partition\":" + md.partition() + ",\"offset\":" + md.offset()
                    + ",\"value_bytes\":" + bytes.length + "}");
            }
        } catch (Exception e) {
            System.err.println("GlueWrite: " + e + (e.getCause() == null ? "" : " / " + e.getCause()));
            System.exit(1);
        }
    }
}
