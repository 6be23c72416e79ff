// Checks the secure test broker (scripts/kafka-secure.sh) with Apache Kafka's own Java client: one record per
// listener and security setup that must work, and a refusal for each one that must not. Source-launch mode:
//
//   set -a; . .run/kafka-secure.env; set +a
//   java -cp "<kafka jars>/*" tests/kafka/SecureProbe.java [topic]
//
// Prints "ok" / "FAIL" per case; exit 0 only if all cases behave as expected. Records that must land are
// then read back over the PLAINTEXT listener and compared. Default topic: secure-probe (auto-created).
// Client logging: ERROR and above on stderr (the expected refusals log WARN noise otherwise).

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.AuthenticationException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.config.Configurator;

public class SecureProbe {
    static int failures = 0;
    static final List<String> landed = new ArrayList<>();
    static String topic;
    static final String RUN_ID = UUID.randomUUID().toString().substring(0, 8);

    static String env(String name) {
        String v = System.getenv(name);
        if (v == null || v.isEmpty()) throw new IllegalStateException("env " + name + " not set (source .run/kafka-secure.env)");
        return v;
    }

    static Properties base(String bootstrap, String protocol) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("security.protocol", protocol);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("acks", "all");
        p.put("max.block.ms", "10000");
        p.put("request.timeout.ms", "5000");
        p.put("delivery.timeout.ms", "10000");
        p.put("linger.ms", "0");
        p.put("reconnect.backoff.max.ms", "1000");
        return p;
    }

    static Properties tls(Properties p, String caFile) {
        p.put("ssl.truststore.type", "PEM");
        p.put("ssl.truststore.location", env("TG_CERT_DIR") + "/" + caFile);
        return p;   // ssl.endpoint.identification.algorithm stays at its default, https
    }

    /** Sends one record; returns null on success or the exception. */
    static Exception send(Properties p, String value) {
        try (KafkaProducer<String, String> prod = new KafkaProducer<>(p)) {
            RecordMetadata md = prod.send(new ProducerRecord<>(topic, "k", value)).get(20, TimeUnit.SECONDS);
            System.out.println("     " + value + " -> " + md.topic() + "-" + md.partition() + "@" + md.offset());
            return null;
        } catch (Exception e) {
            return e;
        }
    }

    static String chain(Throwable t) {
        StringBuilder b = new StringBuilder();
        for (; t != null; t = t.getCause()) {
            if (b.length() > 0) b.append(" <- ");
            b.append(t.getClass().getSimpleName()).append(": ").append(t.getMessage());
        }
        return b.toString();
    }

    static boolean isAuthFailure(Throwable t) {
        for (; t != null; t = t.getCause()) if (t instanceof AuthenticationException) return true;
        return false;
    }

    static void expectOk(String name, Properties p) {
        String value = name + " " + RUN_ID;
        Exception e = send(p, value);
        if (e == null) { landed.add(value); System.out.println("ok   " + name); }
        else { failures++; System.out.println("FAIL " + name + ": " + chain(e)); }
    }

    /** Must fail with an authentication error (TLS or SASL), not a timeout; reasonPart is looked for in the chain. */
    static void expectRefused(String name, Properties p, String reasonPart) {
        Exception e = send(p, name + " " + RUN_ID);
        if (e == null) { failures++; System.out.println("FAIL " + name + ": record was accepted"); return; }
        String c = chain(e);
        if (isAuthFailure(e) && c.contains(reasonPart)) System.out.println("ok   " + name + " (refused: " + c + ")");
        else { failures++; System.out.println("FAIL " + name + ": wrong failure: " + c); }
    }

    public static void main(String[] args) throws Exception {
        if (System.getProperty("log4j2.configurationFile") == null) Configurator.setRootLevel(Level.ERROR);
        topic = args.length > 0 ? args[0] : "secure-probe";
        String certs = env("TG_CERT_DIR");
        String ssl = env("KAFKA_SSL"), mtls = env("KAFKA_MTLS"), saslSsl = env("KAFKA_SASL_SSL");
        String user = env("TG_SCRAM_USER"), pass = env("TG_SCRAM_PASSWORD");

        expectOk("PLAINTEXT", base(env("KAFKA_SECURE_PLAINTEXT"), "PLAINTEXT"));
        expectOk("SSL with test CA", tls(base(ssl, "SSL"), "ca.pem"));
        expectRefused("SSL with ca-wrong.pem", tls(base(ssl, "SSL"), "ca-wrong.pem"), "PKIX path");
        expectRefused("SSL via 127.0.0.1 (hostname mismatch)",
                tls(base(ssl.replace("localhost:", "127.0.0.1:"), "SSL"), "ca.pem"), "127.0.0.1");

        Properties m = tls(base(mtls, "SSL"), "ca.pem");
        m.put("ssl.keystore.type", "PEM");
        m.put("ssl.keystore.location", certs + "/client-keystore.pem");
        expectOk("MTLS with client cert", m);
        // client-encrypted.key (PBES2/AES-256 PKCS#8) is not checked here: Java 17's PEM store cannot decrypt
        // PBES2 ("PBES2 SecretKeyFactory not available"); librdkafka, the project's client, can.
        expectRefused("MTLS without client cert", tls(base(mtls, "SSL"), "ca.pem"), "SSL");

        for (String mech : new String[] {"SCRAM-SHA-512", "SCRAM-SHA-256"}) {
            Properties s = tls(base(saslSsl, "SASL_SSL"), "ca.pem");
            s.put("sasl.mechanism", mech);
            s.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
                    + user + "\" password=\"" + pass + "\";");
            expectOk("SASL_SSL " + mech, s);
        }
        Properties sw = tls(base(saslSsl, "SASL_SSL"), "ca.pem");
        sw.put("sasl.mechanism", "SCRAM-SHA-512");
        sw.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
                + user + "\" password=\"wrong-" + pass + "\";");
        expectRefused("SASL_SSL SCRAM-SHA-512 wrong password", sw, "Authentication failed");

        // OAUTH listener: an unsecured JWT (Kafka's built-in test token) is not an MSK IAM token.
        Properties o = base(env("KAFKA_OAUTH"), "SASL_PLAINTEXT");
        o.put("sasl.mechanism", "OAUTHBEARER");
        o.put("sasl.jaas.config", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required"
                + " unsecuredLoginStringClaim_sub=\"AKIDTOPICGATETEST\";");
        expectRefused("OAUTH with a non-MSK token", o, "invalid_token");

        // Read back over PLAINTEXT: every record that was acknowledged is in the topic.
        Properties c = new Properties();
        c.put("bootstrap.servers", env("KAFKA_SECURE_PLAINTEXT"));
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        Set<String> seen = new HashSet<>();
        try (KafkaConsumer<String, String> cons = new KafkaConsumer<>(c)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            cons.assign(List.of(tp));
            cons.seekToBeginning(List.of(tp));
            long end = System.currentTimeMillis() + 15_000;
            while (System.currentTimeMillis() < end && !seen.containsAll(landed)) {
                for (ConsumerRecord<String, String> r : cons.poll(Duration.ofMillis(500))) seen.add(r.value());
            }
        }
        boolean all = seen.containsAll(landed);
        if (!all) failures++;
        System.out.println((all ? "ok   " : "FAIL ") + "read back " + landed.size() + " records over PLAINTEXT");
        System.out.println(failures == 0 ? "all cases as expected" : failures + " case(s) failed");
        System.exit(failures == 0 ? 0 : 1);
    }
}
