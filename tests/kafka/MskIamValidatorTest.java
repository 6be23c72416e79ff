// Self-test of MskIamValidator (no JUnit; exit 0 = all passed). Run by `scripts/kafka-secure.sh selftest`:
//   java -cp "<validator classes>:<kafka jars>/*" tests/kafka/MskIamValidatorTest.java
//
// 1. Known answer: AWS's published SigV4 presigned-URL example (S3 GET of /test.txt, UNSIGNED-PAYLOAD)
//    must give signature aeeed9bb...d404, which proves the SigV4 code (encoding, sorting, key derivation).
// 2. The kafka-cluster form, as aws-msk-iam-sasl-signer builds it, with known inputs: accepted, and
//    rejected for a wrong secret, wrong region, expired URL, wrong action, unknown key id, altered URL.
// 3. Tokens produced by the real Rust signer (aws-msk-iam-sasl-signer 1.0.1, static test credentials,
//    us-east-1, with and without a session token) are accepted inside their validity: cross-checks the
//    validator against the signer itself, not only against this file's own URL builder.

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

public class MskIamValidatorTest {
    static int failures = 0, passed = 0;

    static final String AKID = "AKIDTOPICGATETEST";
    static final String SECRET = "topicgate-test-secret-0123456789abcdefXYZ";
    static final String REGION = "us-east-1";
    // 2026-11-25T22:00:00Z
    static final String DATE = "20261125T220000Z";
    static final long DATE_MS = 1795644000000L;

    static void check(String name, boolean ok, String detail) {
        if (ok) { passed++; System.out.println("ok   " + name); }
        else { failures++; System.out.println("FAIL " + name + (detail == null ? "" : ": " + detail)); }
    }

    /** Query encoding of the Rust url crate (application/x-www-form-urlencoded): what the token carries. */
    static String formEncode(String s) {
        StringBuilder b = new StringBuilder();
        for (byte by : s.getBytes(StandardCharsets.UTF_8)) {
            int c = by & 0xff;
            if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                    || c == '*' || c == '-' || c == '.' || c == '_') b.append((char) c);
            else if (c == ' ') b.append('+');
            else b.append(String.format("%%%02X", c));
        }
        return b.toString();
    }

    /** Builds a token the way the signer does: Action, presign params, signature, then User-Agent. */
    static String token(String host, String action, String akid, String secret, String signRegion,
                        String amzDate, int expires, String sessionToken) throws Exception {
        Map<String, String> p = new LinkedHashMap<>();
        p.put("Action", action);
        p.put("X-Amz-Date", amzDate);
        p.put("X-Amz-Expires", Integer.toString(expires));
        p.put("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
        p.put("X-Amz-Credential", akid + "/" + amzDate.substring(0, 8) + "/" + signRegion + "/kafka-cluster/aws4_request");
        p.put("X-Amz-SignedHeaders", "host");
        if (sessionToken != null) p.put("X-Amz-Security-Token", sessionToken);
        String sig = MskIamValidator.signature("GET", "/", host, p, MskIamValidator.EMPTY_SHA256,
                secret, amzDate, signRegion, "kafka-cluster");
        p.put("X-Amz-Signature", sig);
        p.put("User-Agent", "aws-msk-iam-sasl-signer-rs/1.0.1");
        StringBuilder url = new StringBuilder("https://" + host + "/?");
        boolean first = true;
        for (Map.Entry<String, String> e : p.entrySet()) {
            if (!first) url.append('&');
            first = false;
            url.append(formEncode(e.getKey())).append('=').append(formEncode(e.getValue()));
        }
        return Base64.getUrlEncoder().withoutPadding().encodeToString(url.toString().getBytes(StandardCharsets.UTF_8));
    }

    static void expectAccept(String name, MskIamValidator v, String token, long nowMs, long wantLifetimeMs) {
        try {
            MskIamValidator.Token t = v.validate(token, nowMs);
            check(name, t.principalName().equals(AKID) && t.lifetimeMs() == wantLifetimeMs,
                    "principal=" + t.principalName() + " lifetimeMs=" + t.lifetimeMs() + " want " + wantLifetimeMs);
        } catch (MskIamValidator.InvalidTokenException e) {
            check(name, false, "rejected: " + e.getMessage());
        }
    }

    static void expectReject(String name, MskIamValidator v, String token, long nowMs, String reasonPart) {
        try {
            v.validate(token, nowMs);
            check(name, false, "accepted");
        } catch (MskIamValidator.InvalidTokenException e) {
            check(name, e.getMessage().contains(reasonPart), "reason: " + e.getMessage());
        }
    }

    static String replaceInUrl(String token, String from, String to) {
        String url = new String(Base64.getUrlDecoder().decode(token), StandardCharsets.UTF_8);
        if (!url.contains(from)) throw new IllegalStateException(from + " not in " + url);
        return Base64.getUrlEncoder().withoutPadding().encodeToString(url.replace(from, to).getBytes(StandardCharsets.UTF_8));
    }

    public static void main(String[] args) throws Exception {
        // 1. AWS documentation example: "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)".
        Map<String, String> s3 = new TreeMap<>();
        s3.put("X-Amz-Algorithm", "AWS4-HMAC-SHA256");
        s3.put("X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request");
        s3.put("X-Amz-Date", "20130524T000000Z");
        s3.put("X-Amz-Expires", "86400");
        s3.put("X-Amz-SignedHeaders", "host");
        String s3sig = MskIamValidator.signature("GET", "/test.txt", "examplebucket.s3.amazonaws.com", s3,
                "UNSIGNED-PAYLOAD", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524T000000Z", "us-east-1", "s3");
        check("sigv4 known answer (AWS S3 presign example)",
                s3sig.equals("aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"), s3sig);
        check("canonical query encoding",
                MskIamValidator.canonicalQuery(s3).equals("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
                        + "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"
                        + "&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"), MskIamValidator.canonicalQuery(s3));

        // 2. kafka-cluster form.
        MskIamValidator v = new MskIamValidator(AKID, SECRET, REGION);
        String host = "kafka.us-east-1.amazonaws.com";
        long now = DATE_MS + 60_000, expiry = DATE_MS + 900_000;
        String good = token(host, "kafka-cluster:Connect", AKID, SECRET, REGION, DATE, 900, null);
        expectAccept("valid token accepted (principal = key id, lifetime = date + expires)", v, good, now, expiry);
        expectAccept("valid token with signed X-Amz-Security-Token accepted", v,
                token(host, "kafka-cluster:Connect", AKID, SECRET, REGION, DATE, 900, "FwoGZX+IvYXdz/EJr//session=="),
                now, expiry);
        expectReject("wrong secret rejected", v,
                token(host, "kafka-cluster:Connect", AKID, SECRET + "x", REGION, DATE, 900, null), now, "signature mismatch");
        expectReject("validator with other secret rejects", new MskIamValidator(AKID, "other-secret", REGION), good, now,
                "signature mismatch");
        expectReject("wrong region (host and scope us-west-2) rejected", v,
                token("kafka.us-west-2.amazonaws.com", "kafka-cluster:Connect", AKID, SECRET, "us-west-2", DATE, 900, null),
                now, "is not kafka.us-east-1.amazonaws.com");
        expectReject("wrong region in scope only rejected", v,
                token(host, "kafka-cluster:Connect", AKID, SECRET, "us-west-2", DATE, 900, null), now, "credential region");
        expectReject("validator for us-west-2 rejects us-east-1 token", new MskIamValidator(AKID, SECRET, "us-west-2"), good,
                now, "is not kafka.us-west-2.amazonaws.com");
        expectReject("expired rejected", v, good, expiry, "expired");
        expectReject("expired (short X-Amz-Expires) rejected", v,
                token(host, "kafka-cluster:Connect", AKID, SECRET, REGION, DATE, 30, null), now, "expired");
        expectReject("date far in the future rejected", v, good, DATE_MS - 3_600_000, "in the future");
        expectReject("wrong action rejected", v,
                token(host, "kafka-cluster:DescribeCluster", AKID, SECRET, REGION, DATE, 900, null), now, "Action");
        expectReject("unknown access key id rejected", v,
                token(host, "kafka-cluster:Connect", "AKIDSOMEONEELSE", SECRET, REGION, DATE, 900, null), now, "unknown access key");
        expectReject("altered X-Amz-Expires rejected", v, replaceInUrl(good, "X-Amz-Expires=900", "X-Amz-Expires=3600"), now,
                "signature mismatch");
        expectReject("extra signed-looking parameter rejected", v, replaceInUrl(good, "&User-Agent=", "&Extra=1&User-Agent="),
                now, "signature mismatch");
        expectAccept("different User-Agent still accepted (not signed)", v,
                replaceInUrl(good, "User-Agent=aws-msk-iam-sasl-signer-rs%2F1.0.1", "User-Agent=other"), now, expiry);
        expectReject("garbage rejected", v, "bm90IGEgdXJs", now, "not an https URL");

        // 3. Golden tokens from the real signer (aws-msk-iam-sasl-signer 1.0.1, credentials AKID/SECRET above,
        //    us-east-1; the second with AWS_SESSION_TOKEN=FwoG+abc/def==), checked 60 s after signing; the
        //    lifetime the signer returned alongside each token must equal the validator's lifetime.
        String[][] golden = {
            {"aHR0cHM6Ly9rYWZrYS51cy1lYXN0LTEuYW1hem9uYXdzLmNvbS8_QWN0aW9uPWthZmthLWNsdXN0ZXIlM0FDb25uZWN0JlgtQW16LUFsZ29yaXRobT1BV1M0LUhNQUMtU0hBMjU2JlgtQW16LUNyZWRlbnRpYWw9QUtJRFRPUElDR0FURVRFU1QlMkYyMDI2MTEyNSUyRnVzLWVhc3QtMSUyRmthZmthLWNsdXN0ZXIlMkZhd3M0X3JlcXVlc3QmWC1BbXotRGF0ZT0yMDI2MTEyNVQyMjE4NDlaJlgtQW16LUV4cGlyZXM9OTAwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCZYLUFtei1TaWduYXR1cmU9N2IzNjU1MGRmNWVmYWQwZTg4MjdmN2YxYmExNmI4MTA1MDBkMzk5Y2I4YzRjNzljZWUwNjQxYTc0YjYxZjhlOSZVc2VyLUFnZW50PWF3cy1tc2staWFtLXNhc2wtc2lnbmVyLXJzJTJGMS4wLjE", "1795646029000"},
            {"aHR0cHM6Ly9rYWZrYS51cy1lYXN0LTEuYW1hem9uYXdzLmNvbS8_QWN0aW9uPWthZmthLWNsdXN0ZXIlM0FDb25uZWN0JlgtQW16LUFsZ29yaXRobT1BV1M0LUhNQUMtU0hBMjU2JlgtQW16LUNyZWRlbnRpYWw9QUtJRFRPUElDR0FURVRFU1QlMkYyMDI2MTEyNSUyRnVzLWVhc3QtMSUyRmthZmthLWNsdXN0ZXIlMkZhd3M0X3JlcXVlc3QmWC1BbXotRGF0ZT0yMDI2MTEyNVQyMjE4NTFaJlgtQW16LUV4cGlyZXM9OTAwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCZYLUFtei1TaWduYXR1cmU9MTE0NjAyM2M1ODVmZDc5ZWY0NDI3YTA2ZTk4NTdjOWJlMjliNjRjY2ZjOGIzNDg4ZjA0MDMwYzFlZjUwZDkzZSZYLUFtei1TZWN1cml0eS1Ub2tlbj1Gd29HJTJCYWJjJTJGZGVmJTNEJTNEJlVzZXItQWdlbnQ9YXdzLW1zay1pYW0tc2FzbC1zaWduZXItcnMlMkYxLjAuMQ", "1795646031000"},
        };
        for (String[] g : golden) {
            long lifetime = Long.parseLong(g[1]);
            long signedAt = lifetime - 900_000;
            expectAccept("token from aws-msk-iam-sasl-signer accepted", v, g[0], signedAt + 60_000, lifetime);
            expectReject("token from aws-msk-iam-sasl-signer, other secret rejected",
                    new MskIamValidator(AKID, SECRET + "x", REGION), g[0], signedAt + 60_000, "signature mismatch");
            expectReject("token from aws-msk-iam-sasl-signer expired after 900 s", v, g[0], lifetime, "expired");
        }

        System.out.println(passed + " passed, " + failures + " failed");
        System.exit(failures == 0 ? 0 : 1);
    }
}
