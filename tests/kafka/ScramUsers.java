// Creates (or updates) one SCRAM user on the secure test broker through Kafka's Admin API, for both
// SCRAM-SHA-512 and SCRAM-SHA-256, then waits (bounded) until describeUserScramCredentials lists both.
// Run by scripts/kafka-secure.sh after the broker is up, over its PLAINTEXT listener, in source-launch mode:
//
//   java -cp "<kafka jars>/*" tests/kafka/ScramUsers.java <bootstrap> <user> <password> [timeout_ms]
//
// The password is read from the environment variable SCRAM_PASSWORD when <password> is "-" (keeps it off
// the process list). Exit codes: 0 ok, 1 failure or timeout (default 30000 ms), 2 usage.

import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.clients.admin.UserScramCredentialsDescription;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.config.Configurator;

public class ScramUsers {
    public static void main(String[] args) throws Exception {
        if (args.length < 3 || args.length > 4) {
            System.err.println("usage: ScramUsers.java <bootstrap> <user> <password|-> [timeout_ms]");
            System.exit(2);
        }
        if (System.getProperty("log4j2.configurationFile") == null) Configurator.setRootLevel(Level.WARN);
        String bootstrap = args[0], user = args[1];
        String password = args[2].equals("-") ? System.getenv("SCRAM_PASSWORD") : args[2];
        if (password == null || password.isEmpty()) {
            System.err.println("ScramUsers: empty password");
            System.exit(2);
        }
        long timeoutMs = args.length == 4 ? Long.parseLong(args[3]) : 30_000;
        long deadline = System.currentTimeMillis() + timeoutMs;

        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, Long.toString(timeoutMs));
        Set<ScramMechanism> want = Set.of(ScramMechanism.SCRAM_SHA_512, ScramMechanism.SCRAM_SHA_256);
        try (Admin admin = Admin.create(p)) {
            // One request per mechanism: the broker refuses two alterations of one user in a request
            // (DuplicateResourceException). 8192 iterations: above both minimums (4096), cheap for tests.
            for (ScramMechanism m : List.of(ScramMechanism.SCRAM_SHA_512, ScramMechanism.SCRAM_SHA_256)) {
                admin.alterUserScramCredentials(List.of(
                        new UserScramCredentialUpsertion(user, new ScramCredentialInfo(m, 8192), password)))
                        .all().get(timeoutMs, TimeUnit.MILLISECONDS);
            }
            // The write is committed to the metadata log; wait until the broker serves it.
            Set<ScramMechanism> have = new TreeSet<>();
            for (int i = 0; i < 200 && System.currentTimeMillis() < deadline; i++) {
                have.clear();
                try {
                    Map<String, UserScramCredentialsDescription> d =
                            admin.describeUserScramCredentials(List.of(user)).all().get(10, TimeUnit.SECONDS);
                    UserScramCredentialsDescription ud = d.get(user);
                    if (ud != null) for (ScramCredentialInfo ci : ud.credentialInfos()) have.add(ci.mechanism());
                } catch (Exception e) {
                    // ResourceNotFound until the upsert is visible: retry.
                }
                if (have.containsAll(want)) {
                    System.out.println("scram user " + user + ": " + have);
                    return;
                }
                Thread.sleep(250);
            }
            System.err.println("ScramUsers: user " + user + " has only " + have + " after " + timeoutMs + " ms");
            System.exit(1);
        }
    }
}
