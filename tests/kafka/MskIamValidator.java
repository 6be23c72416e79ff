// Broker-side validator for AWS MSK IAM tokens, for the secure test broker (scripts/kafka-secure.sh).
//
// Real MSK checks these tokens against IAM; this test stand-in checks them the same way a SigV4 service
// would, with one fixed key pair, so the project's MSK IAM path (aws-msk-iam-sasl-signer + librdkafka
// OAUTHBEARER) can be tested against a real Kafka broker without AWS.
//
// The token (what aws-msk-iam-sasl-signer 1.0.1 produces) is base64url, no padding, of a presigned URL:
//   https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256
//     &X-Amz-Credential=<akid>%2F<yyyymmdd>%2F<region>%2Fkafka-cluster%2Faws4_request&X-Amz-Date=<t>
//     &X-Amz-Expires=900&X-Amz-SignedHeaders=host[&X-Amz-Security-Token=...]&X-Amz-Signature=<hex>
//     &User-Agent=aws-msk-iam-sasl-signer-rs/1.0.1
// Signing rules (read from aws-sigv4's presigned-URL code, SignatureLocation::QueryParams):
//   - every query parameter is signed except X-Amz-Signature; User-Agent is appended after signing;
//     X-Amz-Security-Token, when present, IS signed (SessionTokenMode::Include is the default);
//   - names and values are form-decoded, then RFC 3986 encoded (only A-Za-z0-9-_.~ kept), sorted;
//   - the only signed header is host (https, default port omitted);
//   - the payload hash is SHA-256 of the empty body (SignableBody::Bytes(&[])), not UNSIGNED-PAYLOAD.
//
// Accepted only if: host is kafka.<region>.amazonaws.com, path "/", Action=kafka-cluster:Connect, algorithm
// AWS4-HMAC-SHA256, signed headers exactly "host", credential scope <akid>/<date>/<region>/kafka-cluster,
// access key id equals the configured one, X-Amz-Date + X-Amz-Expires is in the future (and X-Amz-Date is
// at most 5 minutes ahead of the broker clock), and the recomputed signature matches.
// On success the token's principal is the access key id and its lifetime the URL's expiry, so the broker's
// re-authentication (KIP-368) follows it. The broker log gets an INFO line per accepted token and, on
// failure, a WARN line with the reason (logger MskIamValidator); the client gets "invalid_token".
//
// Broker config (the options come from the listener's JAAS entry):
//   listener.name.oauth.oauthbearer.sasl.server.callback.handler.class=MskIamValidator
//   listener.name.oauth.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule \
//       required accessKeyId="..." secretAccessKey="..." region="us-east-1";
// Helpers are public because MskIamValidatorTest runs in source-launch mode (another class loader).
// Compiled by scripts/kafka-secure.sh with javac against the Kafka jars; tested by MskIamValidatorTest.java.

import java.io.IOException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import javax.security.auth.callback.Callback;
import javax.security.auth.callback.UnsupportedCallbackException;
import javax.security.auth.login.AppConfigurationEntry;

import org.apache.kafka.common.security.auth.AuthenticateCallbackHandler;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerExtensionsValidatorCallback;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerToken;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallback;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

public class MskIamValidator implements AuthenticateCallbackHandler {
    private static final Logger LOG = LoggerFactory.getLogger(MskIamValidator.class);

    public static final String ALGORITHM = "AWS4-HMAC-SHA256";
    public static final String SERVICE = "kafka-cluster";
    public static final String ACTION = "kafka-cluster:Connect";
    /** SHA-256 of the empty body: the payload hash aws-msk-iam-sasl-signer signs with. */
    public static final String EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    public static final long MAX_FUTURE_SKEW_MS = 5 * 60 * 1000L;
    private static final DateTimeFormatter AMZ_DATE = DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'");

    private String accessKeyId;
    private String secretAccessKey;
    private String region;

    public MskIamValidator() {}

    /** For tests: configure directly instead of through JAAS. */
    public MskIamValidator(String accessKeyId, String secretAccessKey, String region) {
        this.accessKeyId = accessKeyId;
        this.secretAccessKey = secretAccessKey;
        this.region = region;
    }

    @Override
    public void configure(Map<String, ?> configs, String saslMechanism, List<AppConfigurationEntry> jaasConfigEntries) {
        if (!"OAUTHBEARER".equals(saslMechanism))
            throw new IllegalArgumentException("MskIamValidator only serves OAUTHBEARER, not " + saslMechanism);
        if (jaasConfigEntries == null || jaasConfigEntries.size() != 1)
            throw new IllegalArgumentException("MskIamValidator needs exactly one JAAS entry");
        Map<String, ?> options = jaasConfigEntries.get(0).getOptions();
        accessKeyId = option(options, "accessKeyId");
        secretAccessKey = option(options, "secretAccessKey");
        region = option(options, "region");
        LOG.info("MskIamValidator configured: accessKeyId={} region={}", accessKeyId, region);
    }

    private static String option(Map<String, ?> options, String name) {
        Object v = options.get(name);
        if (!(v instanceof String) || ((String) v).isEmpty())
            throw new IllegalArgumentException("MskIamValidator: JAAS option " + name + " is required");
        return (String) v;
    }

    @Override
    public void close() {}

    @Override
    public void handle(Callback[] callbacks) throws IOException, UnsupportedCallbackException {
        for (Callback cb : callbacks) {
            if (cb instanceof OAuthBearerValidatorCallback) {
                OAuthBearerValidatorCallback v = (OAuthBearerValidatorCallback) cb;
                try {
                    Token t = validate(v.tokenValue(), System.currentTimeMillis());
                    v.token(t);
                    // One line per (re-)authentication: lets tests see re-authentication in the broker log.
                    LOG.info("MSK IAM token accepted: principal={} expires={}", t.principalName(),
                            java.time.Instant.ofEpochMilli(t.lifetimeMs()));
                } catch (InvalidTokenException e) {
                    LOG.warn("MSK IAM token rejected: {}", e.getMessage());
                    v.error("invalid_token", null, null);
                }
            } else if (cb instanceof OAuthBearerExtensionsValidatorCallback) {
                // MSK IAM sends no SASL extensions; none is marked valid, so any sent are ignored.
            } else {
                throw new UnsupportedCallbackException(cb);
            }
        }
    }

    public static final class InvalidTokenException extends Exception {
        InvalidTokenException(String msg) { super(msg); }
    }

    /** The accepted token: principal = access key id, lifetime = X-Amz-Date + X-Amz-Expires. */
    public static final class Token implements OAuthBearerToken {
        private final String value, principal;
        private final long startMs, lifetimeMs;
        Token(String value, String principal, long startMs, long lifetimeMs) {
            this.value = value; this.principal = principal; this.startMs = startMs; this.lifetimeMs = lifetimeMs;
        }
        @Override public String value() { return value; }
        @Override public Set<String> scope() { return Collections.emptySet(); }
        @Override public long lifetimeMs() { return lifetimeMs; }
        @Override public String principalName() { return principal; }
        @Override public Long startTimeMs() { return startMs; }
    }

    /** Checks one token at time nowMs; returns the token or throws with the reason. */
    public Token validate(String tokenValue, long nowMs) throws InvalidTokenException {
        if (tokenValue == null || tokenValue.isEmpty()) throw new InvalidTokenException("empty token");
        String url;
        try {
            url = new String(Base64.getUrlDecoder().decode(tokenValue), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            throw new InvalidTokenException("token is not base64url: " + e.getMessage());
        }
        String prefix = "https://";
        if (!url.startsWith(prefix)) throw new InvalidTokenException("not an https URL");
        int q = url.indexOf('?');
        if (q < 0) throw new InvalidTokenException("URL has no query");
        String hostAndPath = url.substring(prefix.length(), q);
        int slash = hostAndPath.indexOf('/');
        String host = slash < 0 ? hostAndPath : hostAndPath.substring(0, slash);
        String path = slash < 0 ? "/" : hostAndPath.substring(slash);
        String wantHost = "kafka." + region + ".amazonaws.com";
        if (!host.equals(wantHost)) throw new InvalidTokenException("host " + host + " is not " + wantHost);
        if (!path.equals("/")) throw new InvalidTokenException("path " + path + " is not /");

        Map<String, String> params = parseQuery(url.substring(q + 1));
        String action = params.get("Action");
        if (!ACTION.equals(action)) throw new InvalidTokenException("Action " + action + " is not " + ACTION);
        if (!ALGORITHM.equals(params.get("X-Amz-Algorithm")))
            throw new InvalidTokenException("X-Amz-Algorithm " + params.get("X-Amz-Algorithm") + " is not " + ALGORITHM);
        if (!"host".equals(params.get("X-Amz-SignedHeaders")))
            throw new InvalidTokenException("X-Amz-SignedHeaders is not host");
        String amzDate = require(params, "X-Amz-Date");
        String signature = require(params, "X-Amz-Signature");
        String[] cred = require(params, "X-Amz-Credential").split("/", -1);
        if (cred.length != 5 || !cred[4].equals("aws4_request"))
            throw new InvalidTokenException("malformed X-Amz-Credential");
        if (!cred[0].equals(accessKeyId)) throw new InvalidTokenException("unknown access key id " + cred[0]);
        if (!cred[2].equals(region)) throw new InvalidTokenException("credential region " + cred[2] + " is not " + region);
        if (!cred[3].equals(SERVICE)) throw new InvalidTokenException("credential service " + cred[3] + " is not " + SERVICE);
        if (amzDate.length() < 8 || !cred[1].equals(amzDate.substring(0, 8)))
            throw new InvalidTokenException("credential date " + cred[1] + " does not match X-Amz-Date " + amzDate);

        long startMs;
        try {
            startMs = LocalDateTime.parse(amzDate, AMZ_DATE).toInstant(ZoneOffset.UTC).toEpochMilli();
        } catch (DateTimeParseException e) {
            throw new InvalidTokenException("malformed X-Amz-Date " + amzDate);
        }
        long expires;
        try {
            expires = Long.parseLong(require(params, "X-Amz-Expires"));
        } catch (NumberFormatException e) {
            throw new InvalidTokenException("malformed X-Amz-Expires");
        }
        if (expires < 1 || expires > 604800) throw new InvalidTokenException("X-Amz-Expires out of range: " + expires);
        long expiryMs = startMs + expires * 1000;
        if (nowMs >= expiryMs) throw new InvalidTokenException("expired at " + amzDate + "+" + expires + "s");
        if (startMs - nowMs > MAX_FUTURE_SKEW_MS) throw new InvalidTokenException("X-Amz-Date " + amzDate + " is in the future");

        // Signed: everything but the signature itself and the User-Agent added after signing.
        Map<String, String> signed = new HashMap<>(params);
        signed.remove("X-Amz-Signature");
        signed.remove("User-Agent");
        String expected;
        try {
            expected = signature("GET", "/", host, signed, EMPTY_SHA256, secretAccessKey, amzDate, region, SERVICE);
        } catch (GeneralSecurityException e) {
            throw new InvalidTokenException("cannot compute signature: " + e);
        }
        if (!MessageDigest.isEqual(expected.getBytes(StandardCharsets.US_ASCII), signature.getBytes(StandardCharsets.US_ASCII)))
            throw new InvalidTokenException("signature mismatch for " + accessKeyId + " (wrong secret or altered URL)");
        return new Token(tokenValue, accessKeyId, startMs, expiryMs);
    }

    private static String require(Map<String, String> params, String name) throws InvalidTokenException {
        String v = params.get(name);
        if (v == null || v.isEmpty()) throw new InvalidTokenException("missing " + name);
        return v;
    }

    /** Form-decodes a query string; a repeated parameter is rejected (the signer never repeats one). */
    public static Map<String, String> parseQuery(String query) throws InvalidTokenException {
        Map<String, String> out = new HashMap<>();
        for (String pair : query.split("&")) {
            if (pair.isEmpty()) continue;
            int eq = pair.indexOf('=');
            String k = eq < 0 ? pair : pair.substring(0, eq);
            String v = eq < 0 ? "" : pair.substring(eq + 1);
            try {
                k = URLDecoder.decode(k, StandardCharsets.UTF_8);
                v = URLDecoder.decode(v, StandardCharsets.UTF_8);
            } catch (IllegalArgumentException e) {
                throw new InvalidTokenException("bad query encoding: " + e.getMessage());
            }
            if (out.put(k, v) != null) throw new InvalidTokenException("repeated query parameter " + k);
        }
        return out;
    }

    // --- SigV4 (presigned URL, signed header "host" only) ----------------------------------------------------

    /** RFC 3986 encoding as SigV4 wants it: UTF-8 bytes, only A-Z a-z 0-9 - _ . ~ left as they are. */
    public static String uriEncode(String s) {
        StringBuilder b = new StringBuilder();
        for (byte by : s.getBytes(StandardCharsets.UTF_8)) {
            int c = by & 0xff;
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                    || c == '-' || c == '_' || c == '.' || c == '~') {
                b.append((char) c);
            } else {
                b.append('%').append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
                        .append(Character.toUpperCase(Character.forDigit(c & 0xf, 16)));
            }
        }
        return b.toString();
    }

    public static String canonicalQuery(Map<String, String> params) {
        List<String[]> enc = new ArrayList<>();
        for (Map.Entry<String, String> e : params.entrySet())
            enc.add(new String[] {uriEncode(e.getKey()), uriEncode(e.getValue())});
        // Sorted on the encoded pairs (byte order; all ASCII after encoding).
        enc.sort((a, b) -> a[0].equals(b[0]) ? a[1].compareTo(b[1]) : a[0].compareTo(b[0]));
        StringBuilder b = new StringBuilder();
        for (String[] kv : enc) {
            if (b.length() > 0) b.append('&');
            b.append(kv[0]).append('=').append(kv[1]);
        }
        return b.toString();
    }

    public static String canonicalRequest(String method, String path, String host, Map<String, String> params, String payloadHash) {
        return method + "\n" + path + "\n" + canonicalQuery(params) + "\n"
                + "host:" + host + "\n\n"
                + "host\n"
                + payloadHash;
    }

    /** Hex SigV4 signature of a presigned GET with only the host header signed. */
    public static String signature(String method, String path, String host, Map<String, String> params, String payloadHash,
                            String secret, String amzDate, String region, String service) throws GeneralSecurityException {
        String date = amzDate.substring(0, 8);
        String scope = date + "/" + region + "/" + service + "/aws4_request";
        String stringToSign = ALGORITHM + "\n" + amzDate + "\n" + scope + "\n"
                + hex(MessageDigest.getInstance("SHA-256").digest(
                        canonicalRequest(method, path, host, params, payloadHash).getBytes(StandardCharsets.UTF_8)));
        byte[] k = hmac(("AWS4" + secret).getBytes(StandardCharsets.UTF_8), date);
        k = hmac(k, region);
        k = hmac(k, service);
        k = hmac(k, "aws4_request");
        return hex(hmac(k, stringToSign));
    }

    private static byte[] hmac(byte[] key, String data) throws GeneralSecurityException {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        return mac.doFinal(data.getBytes(StandardCharsets.UTF_8));
    }

    public static String hex(byte[] bytes) {
        StringBuilder b = new StringBuilder(bytes.length * 2);
        for (byte x : bytes) b.append(Character.forDigit((x >> 4) & 0xf, 16)).append(Character.forDigit(x & 0xf, 16));
        return b.toString();
    }
}
