import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.errors.AuthenticationException;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * Consumes like Logstash's kafka input: reads the `kafka { ... }` input of a kafka-logstash.conf,
 * maps its options to kafka-clients properties as the logstash-integration-kafka plugin does,
 * and prints each record value on its own line.
 *
 * Exit codes: 0 got --max records, 2 timeout, 3 authorization denied, 4 TLS/authentication
 * failure, 1 anything else.
 */
public class LogstashConsumer {
    // Logstash option -> kafka-clients property (the plugin's names for the same settings).
    private static final Map<String, String> OPTIONS = Map.ofEntries(
        Map.entry("bootstrap_servers", "bootstrap.servers"),
        Map.entry("group_id", "group.id"),
        Map.entry("client_id", "client.id"),
        Map.entry("auto_offset_reset", "auto.offset.reset"),
        Map.entry("security_protocol", "security.protocol"),
        Map.entry("ssl_keystore_type", "ssl.keystore.type"),
        Map.entry("ssl_keystore_location", "ssl.keystore.location"),
        Map.entry("ssl_keystore_password", "ssl.keystore.password"),
        Map.entry("ssl_key_password", "ssl.key.password"),
        Map.entry("ssl_truststore_type", "ssl.truststore.type"),
        Map.entry("ssl_truststore_location", "ssl.truststore.location"),
        Map.entry("ssl_truststore_password", "ssl.truststore.password"),
        Map.entry("ssl_endpoint_identification_algorithm", "ssl.endpoint.identification.algorithm"));

    public static void main(String[] args) {
        Map<String, String> flags = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            flags.put(args[i], args[i + 1]);
        }
        if (!flags.containsKey("--conf")) {
            System.err.println("usage: LogstashConsumer --conf kafka-logstash.conf [--dir DIR] [--bootstrap H:P] "
                + "[--group G] [--topic T] [--max N] [--timeout-ms MS]");
            System.exit(1);
        }
        try {
            System.exit(run(flags));
        } catch (Exception e) {
            System.exit(classify(e));
        }
    }

    static int run(Map<String, String> flags) throws IOException {
        String conf = Files.readString(Path.of(flags.get("--conf")));
        Map<String, String> settings = new HashMap<>();
        List<String> topics = new ArrayList<>();
        parseKafkaInput(conf, settings, topics);

        Properties props = new Properties();
        for (Map.Entry<String, String> e : settings.entrySet()) {
            String property = OPTIONS.get(e.getKey());
            if (property != null) {
                props.put(property, e.getValue());
            }
        }
        String dir = flags.get("--dir");
        if (dir != null) {
            // The conf points at the install directory (/etc/logstash/outflow); use the bundle's.
            for (String key : List.of("ssl.keystore.location", "ssl.truststore.location")) {
                String value = props.getProperty(key);
                if (value != null) {
                    props.put(key, Path.of(dir).resolve(Path.of(value).getFileName()).toString());
                }
            }
        }
        if (flags.containsKey("--bootstrap")) props.put("bootstrap.servers", flags.get("--bootstrap"));
        if (flags.containsKey("--group")) props.put("group.id", flags.get("--group"));
        if (flags.containsKey("--topic")) topics = List.of(flags.get("--topic"));
        props.put("key.deserializer", StringDeserializer.class.getName());
        props.put("value.deserializer", StringDeserializer.class.getName());
        int max = Integer.parseInt(flags.getOrDefault("--max", "2147483647"));
        long deadline = System.currentTimeMillis() + Long.parseLong(flags.getOrDefault("--timeout-ms", "60000"));

        int seen = 0;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
            consumer.subscribe(topics);
            while (System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> record : consumer.poll(Duration.ofMillis(500))) {
                    System.out.println(record.value());
                    System.out.flush();
                    if (++seen >= max) {
                        consumer.commitSync();
                        return 0;
                    }
                }
            }
        }
        System.err.println("TIMEOUT: got " + seen + " of " + max + " records");
        return 2;
    }

    /** Reads `key => "value"` and `topics => ["a", "b"]` lines of the `kafka { }` input block. */
    static void parseKafkaInput(String conf, Map<String, String> settings, List<String> topics) {
        int start = conf.indexOf("kafka {");
        if (start < 0) {
            throw new IllegalArgumentException("no kafka { } input in the conf");
        }
        int depth = 0;
        int end = start;
        for (int i = conf.indexOf('{', start); i < conf.length(); i++) {
            char c = conf.charAt(i);
            if (c == '{') depth++;
            if (c == '}' && --depth == 0) { end = i; break; }
        }
        String block = conf.substring(start, end);
        Matcher scalar = Pattern.compile("(?m)^\\s*(\\w+)\\s*=>\\s*\"([^\"]*)\"").matcher(block);
        while (scalar.find()) {
            settings.put(scalar.group(1), scalar.group(2));
        }
        Matcher list = Pattern.compile("(?m)^\\s*topics\\s*=>\\s*\\[([^\\]]*)\\]").matcher(block);
        if (list.find()) {
            Matcher item = Pattern.compile("\"([^\"]+)\"").matcher(list.group(1));
            while (item.find()) {
                topics.add(item.group(1));
            }
        }
    }

    static int classify(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof AuthorizationException) {
                System.err.println("DENIED: " + t.getMessage());
                return 3;
            }
            if (t instanceof AuthenticationException) {
                System.err.println("AUTH: " + t.getMessage());
                return 4;
            }
        }
        System.err.println("ERROR: " + e);
        return 1;
    }
}
