package dev.wafermon.sdk;

import java.net.URI;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.AwsSessionCredentials;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;

/**
 * Direct mode to S3 with the AWS SDK v2 (an optional dependency): one object per batch and
 * (site, UTC date) in it, key {@code PREFIX/{site_id}/{YYYY-MM-DD}/{YYYYmmddTHHMMSSffffffZ}-{random}.jsonl},
 * as the C SDK writes them, so one reader serves both. Any S3 error (a wrong key, a missing
 * bucket, a network failure) keeps the events: it is an operator's fix, and the spool delivers
 * them afterwards. Checksums only when required: SeaweedFS refuses some of the SDK's default
 * ones over url-connection (../shared/infra/java.md), and S3 itself is fine with it.
 */
final class S3Sink implements Sinks.Sink {
    private static final DateTimeFormatter STAMP = DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmssSSSSSS'Z'")
            .withZone(ZoneOffset.UTC);
    private final S3Client s3;
    private final String bucket;
    private final String prefix;

    S3Sink(Settings s) {
        this.bucket = s.s3Bucket;
        this.prefix = s.s3Prefix;
        AwsCredentialsProvider credentials;
        if (s.awsAccessKeyId != null) {
            credentials = StaticCredentialsProvider.create(s.awsSessionToken != null
                    ? AwsSessionCredentials.create(s.awsAccessKeyId, s.awsSecretAccessKey, s.awsSessionToken)
                    : AwsBasicCredentials.create(s.awsAccessKeyId, s.awsSecretAccessKey));
        } else {
            credentials = DefaultCredentialsProvider.builder().build();
        }
        S3ClientBuilder b = S3Client.builder().region(Region.of(s.s3Region)).credentialsProvider(credentials)
                .httpClient(UrlConnectionHttpClient.builder().connectionTimeout(s.timeout).socketTimeout(s.timeout).build())
                .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED);
        if (s.s3Endpoint != null) {
            b.endpointOverride(URI.create(s.s3Endpoint)).forcePathStyle(true);
        }
        this.s3 = b.build();
    }

    @Override
    public String name() {
        return "s3";
    }

    @Override
    public Sinks.Result send(List<Wire.Line> lines) {
        List<String> refused = new ArrayList<>();
        String stamp = STAMP.format(Instant.now());
        for (Map.Entry<String, List<Wire.Line>> g : Sinks.byPlace(lines, refused).entrySet()) {
            byte[] body = Sinks.concat(g.getValue());
            String key = (prefix.isEmpty() ? "" : prefix + "/") + g.getKey() + "/" + stamp + "-"
                    + Ids.uuid4().substring(0, 8) + ".jsonl";
            try {
                s3.putObject(PutObjectRequest.builder().bucket(bucket).key(key)
                        .contentType("application/x-ndjson").build(), RequestBody.fromBytes(body));
            } catch (SdkException e) {
                // Objects already put stay; the retry puts the whole batch again under new keys
                // and readers dedupe by event_id (at least once).
                return Sinks.Result.unavailable("S3 PUT s3://" + bucket + "/" + key + ": " + e.getMessage(), Double.NaN);
            }
        }
        return Sinks.Result.stored(refused);
    }
}
