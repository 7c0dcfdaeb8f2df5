/// One attribute of a load balancer, listener or target group: the key as AWS spells it (spelled here
/// and nowhere else), its type and range, AWS's default per target type, and the model field it sets.
/// Decoding the file, validating, `describe-*-attributes` and `modify-*-attributes` all read the tables
/// below (docs/target-groups.md §1).
package struct Attribute<Model>: Sendable {
    package let key: String
    /// AWS's default for a target group of this type (nil for the other resources); nil: unset.
    let defaultValue: @Sendable (TargetType?) -> String?
    /// Checks a value as given (a string, or a JSON bool or number), recording errors and warnings with
    /// `path`; returns it in canonical form, or nil when it is not valid.
    package let check: @Sendable (inout ConfigReader, JSONValue, String) -> String?
    /// Sets the model field from a checked value.
    package let set: @Sendable (inout Model, String) -> Void
    /// The value in force, as describe lists it; nil when it does not apply.
    package let get: @Sendable (Model) -> String?
    /// The model field it sets (a key path's description), so a message about a rule between
    /// attributes can name the key.
    package var field: String? = nil

    static func boolean(
        _ key: String, _ field: WritableKeyPath<Model, Bool> & Sendable, default value: Bool,
        ip: Bool? = nil
    ) -> Attribute {
        Attribute(
            key: key, defaultValue: { type in String(type == .ip ? (ip ?? value) : value) },
            check: { reader, given, path in reader.boolean(given, path).map { String($0) } },
            set: { $0[keyPath: field] = $1 == "true" }, get: { String($0[keyPath: field]) }, field: "\(field)")
    }

    package static func integer(
        _ key: String, _ field: WritableKeyPath<Model, Int> & Sendable, default value: Int, valid: ClosedRange<Int>,
        aws: ClosedRange<Int>? = nil
    ) -> Attribute {
        Attribute(
            key: key, defaultValue: { _ in String(value) },
            check: { reader, given, path in reader.integer(given, path, valid: valid, aws: aws).map { String($0) } },
            set: { $0[keyPath: field] = Int($1)! }, get: { String($0[keyPath: field]) }, field: "\(field)")
    }

    /// A whole number or `off` (nil in the model).
    static func integerOrOff(
        _ key: String, _ field: WritableKeyPath<Model, Int?> & Sendable, valid: ClosedRange<Int>
    ) -> Attribute {
        Attribute(
            key: key, defaultValue: { _ in "off" },
            check: { reader, given, path in
                given.attributeString == "off" ? "off" : reader.integer(given, path, valid: valid).map { String($0) }
            },
            set: { $0[keyPath: field] = Int($1) }, get: { $0[keyPath: field].map { String($0) } ?? "off" },
            field: "\(field)")
    }

    package static func choice<Value: RawRepresentable & Sendable>(
        _ key: String, _ field: WritableKeyPath<Model, Value> & Sendable, default value: Value, names: [String]
    ) -> Attribute where Value.RawValue == String {
        Attribute(
            key: key, defaultValue: { _ in value.rawValue },
            check: { reader, given, path in
                reader.choice(given, path, Value.self, names: names).map(\.rawValue)
            },
            set: { $0[keyPath: field] = Value(rawValue: $1)! }, get: { $0[keyPath: field].rawValue }, field: "\(field)")
    }

    /// A string that `valid` accepts (nil) or explains (the message).
    package static func text(
        _ key: String, _ field: WritableKeyPath<Model, String> & Sendable, default value: String,
        valid: @escaping @Sendable (String) -> String? = { _ in nil }
    ) -> Attribute {
        Attribute(
            key: key, defaultValue: { _ in value },
            check: { reader, given, path in
                guard let text = given.attributeString else {
                    reader.error(path, "\(given.shown) is not a string")
                    return nil
                }
                if let problem = valid(text) {
                    reader.error(path, "\(given.shown) \(problem)")
                    return nil
                }
                return text
            },
            set: { $0[keyPath: field] = $1 }, get: { $0[keyPath: field] }, field: "\(field)")
    }
}

/// `TargetGroupAttributes`: AWS's, then localnlb's own under `localnlb.`.
let targetGroupAttributes: [Attribute<TargetGroupConfiguration>] = [
    .integer(
        "deregistration_delay.timeout_seconds", \.deregistrationDelaySeconds, default: 300, valid: 0...86400,
        aws: 0...3600),
    .boolean(
        "deregistration_delay.connection_termination.enabled", \.deregistrationConnectionTermination,
        default: false),
    // docs/target-groups.md §1: true for instance targets, false for ip targets.
    .boolean("preserve_client_ip.enabled", \.preserveClientIP, default: true, ip: false),
    .boolean("proxy_protocol_v2.enabled", \.proxyProtocolV2Enabled, default: false),
    .choice(
        "proxy_protocol_v2.client_to_server.header_placement", \.headerPlacement, default: .onFirstAckWithPayload,
        names: ["on_first_ack_with_payload", "on_first_ack"]),
    .boolean("stickiness.enabled", \.stickinessEnabled, default: false),
    .text("stickiness.type", \.stickinessType, default: "source_ip") { text in
        if ["lb_cookie", "app_cookie"].contains(text) {
            return "is for Application Load Balancers; a Network Load Balancer has source_ip"
        }
        return text == "source_ip" ? nil : "is not source_ip"
    },
    .text("load_balancing.cross_zone.enabled", \.crossZone, default: "use_load_balancer_configuration") {
        ["true", "false", "use_load_balancer_configuration"].contains($0)
            ? nil : "is not true, false or use_load_balancer_configuration"
    },
    .boolean(
        "target_health_state.unhealthy.connection_termination.enabled", \.unhealthyConnectionTermination,
        default: true),
    .integer(
        "target_health_state.unhealthy.draining_interval_seconds", \.unhealthyDrainingIntervalSeconds, default: 0,
        valid: 0...360000),
    .integer(
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count", \.minimumHealthyTargetsCount,
        default: 1, valid: 1...100000),
    .integerOrOff(
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
        \.minimumHealthyTargetsPercentage, valid: 1...100),
    .integer(
        "target_group_health.dns_failover.minimum_healthy_targets.count",
        \.dnsFailoverMinimumHealthyTargetsCount, default: 1, valid: 1...100000),
    .integerOrOff(
        "target_group_health.dns_failover.minimum_healthy_targets.percentage",
        \.dnsFailoverMinimumHealthyTargetsPercentage, valid: 1...100),
    .choice(
        "localnlb.load_balancing.algorithm.type", \.algorithm, default: .leastConnections,
        names: ["least_connections", "round_robin", "flow_hash"]),
    .boolean("localnlb.proxy_protocol_v1.enabled", \.proxyProtocolV1Enabled, default: false),
    Attribute(
        key: "localnlb.proxy_protocol_v2.tlvs", defaultValue: { _ in "aws" },
        check: { reader, given, path in
            guard let text = given.attributeString, ["aws", "none"].contains(text) else {
                reader.error(path, "\(given.shown) is not aws or none")
                return nil
            }
            return text
        },
        set: { $0.proxyProtocolV2AWSTLVs = $1 == "aws" },
        get: { $0.proxyProtocolV2Enabled ? ($0.proxyProtocolV2AWSTLVs ? "aws" : "none") : nil },
        field: "\(\TargetGroupConfiguration.proxyProtocolV2AWSTLVs)"),
    Attribute(
        key: "localnlb.proxy_protocol_v2.vpc_endpoint_id", defaultValue: { _ in nil },
        check: { reader, given, path in
            guard let text = given.attributeString, text.hasPrefix("vpce-"), text.utf8.count <= 250 else {
                reader.error(path, "\(given.shown) is not a VPC endpoint id (vpce-…)")
                return nil
            }
            return text
        },
        set: { $0.vpcEndpointID = $1 },
        get: { $0.proxyProtocolV2Enabled && $0.proxyProtocolV2AWSTLVs ? $0.vpcEndpointID : nil },
        field: "\(\TargetGroupConfiguration.vpcEndpointID)"),
]

/// `TargetGroupAttributes` of an application load balancer's (HTTP) target group, the ALB guide's list.
/// Stickiness and the other algorithms are refused until the proxy serves them (docs/alb.md §19).
let applicationTargetGroupAttributes: [Attribute<TargetGroupConfiguration>] = [
    .integer(
        "deregistration_delay.timeout_seconds", \.deregistrationDelaySeconds, default: 300, valid: 0...86400,
        aws: 0...3600),
    .boolean("stickiness.enabled", \.stickinessEnabled, default: false),
    .text("stickiness.type", \.stickinessType, default: "lb_cookie") { text in
        ["lb_cookie", "app_cookie"].contains(text) ? nil : "is not lb_cookie or app_cookie"
    },
    .integer(
        "stickiness.lb_cookie.duration_seconds", \.lbCookieDurationSeconds, default: 86400, valid: 1...604800),
    .text("stickiness.app_cookie.cookie_name", \.appCookieName, default: "") { name in
        // AWS reserves its own cookies' names.
        if ["AWSALB", "AWSALBAPP", "AWSALBTG"].contains(where: { name.hasPrefix($0) }) {
            return "starts with a name AWS reserves (AWSALB, AWSALBAPP, AWSALBTG)"
        }
        return name.utf8.count > 1000 || name.contains(where: { $0 == ";" || $0 == "=" || $0 == " " || $0 == "," })
            ? "is not a cookie name" : nil
    },
    .integer(
        "stickiness.app_cookie.duration_seconds", \.appCookieDurationSeconds, default: 86400, valid: 1...604800),
    .text("load_balancing.algorithm.type", \.applicationAlgorithm, default: "round_robin") { text in
        if ["round_robin", "least_outstanding_requests", "weighted_random"].contains(text) { return nil }
        return "is not round_robin, least_outstanding_requests or weighted_random"
    },
    .text("load_balancing.algorithm.anomaly_mitigation", \.anomalyMitigation, default: "off") {
        // Automatic target weights are not emulated: "on" is refused rather than kept and ignored.
        $0 == "off"
            ? nil
            : $0 == "on"
                ? "is not served yet: anomaly mitigation (automatic target weights, weighted_random only on AWS) is "
                    + "not emulated; off is"
                : "is not on or off"
    },
    .integer("slow_start.duration_seconds", \.slowStartSeconds, default: 0, valid: 0...900),
    .text("load_balancing.cross_zone.enabled", \.crossZone, default: "use_load_balancer_configuration") {
        ["true", "false", "use_load_balancer_configuration"].contains($0)
            ? nil : "is not true, false or use_load_balancer_configuration"
    },
    .integer(
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count", \.minimumHealthyTargetsCount,
        default: 1, valid: 1...100000),
    .integerOrOff(
        "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
        \.minimumHealthyTargetsPercentage, valid: 1...100),
    .integer(
        "target_group_health.dns_failover.minimum_healthy_targets.count",
        \.dnsFailoverMinimumHealthyTargetsCount, default: 1, valid: 1...100000),
    .integerOrOff(
        "target_group_health.dns_failover.minimum_healthy_targets.percentage",
        \.dnsFailoverMinimumHealthyTargetsPercentage, valid: 1...100),
]

/// `ListenerAttributes` of a TCP listener.
let listenerAttributes: [Attribute<ListenerConfiguration>] = [
    .integer("tcp.idle_timeout.seconds", \.idleTimeoutSeconds, default: 350, valid: 1...86400, aws: 60...6000),
    Attribute(
        key: "localnlb.connect_timeout.seconds", defaultValue: { _ in "10" },
        check: { reader, given, path in
            guard let text = given.attributeString, let seconds = Double(text), seconds > 0, seconds <= 3600 else {
                reader.error(path, "\(given.shown) is not a number of seconds above 0 and at most 3600")
                return nil
            }
            return text
        },
        set: { $0.connectTimeoutSeconds = Double($1)! }, get: { String($0.connectTimeoutSeconds) }),
]

/// The response headers an application load balancer listener adds (HTTP header modification,
/// docs/alb.md §24): the attribute that sets each, and the header.
public let applicationResponseHeaders: [(key: String, header: String)] = [
    ("routing.http.response.strict_transport_security.header_value", "Strict-Transport-Security"),
    ("routing.http.response.access_control_allow_origin.header_value", "Access-Control-Allow-Origin"),
    ("routing.http.response.access_control_allow_methods.header_value", "Access-Control-Allow-Methods"),
    ("routing.http.response.access_control_allow_headers.header_value", "Access-Control-Allow-Headers"),
    ("routing.http.response.access_control_allow_credentials.header_value", "Access-Control-Allow-Credentials"),
    ("routing.http.response.access_control_expose_headers.header_value", "Access-Control-Expose-Headers"),
    ("routing.http.response.access_control_max_age.header_value", "Access-Control-Max-Age"),
    ("routing.http.response.content_security_policy.header_value", "Content-Security-Policy"),
    ("routing.http.response.x_content_type_options.header_value", "X-Content-Type-Options"),
    ("routing.http.response.x_frame_options.header_value", "X-Frame-Options"),
]

/// What is wrong with `value` as the value of response header `header` ("" turns it off), or nil.
func responseHeaderProblem(_ header: String, _ value: String) -> String? {
    if value.isEmpty { return nil }
    guard value.utf8.count <= 1024, value.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else {
        return "is not 1-1024 printable ASCII characters (a header value cannot hold a line break)"
    }
    let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
    switch header {
    case "Strict-Transport-Security":
        return value.lowercased().hasPrefix("max-age=") ? nil : "does not start with max-age=<seconds>"
    case "Access-Control-Allow-Credentials":
        return value == "true" ? nil : "is not true (the only value the header has)"
    case "Access-Control-Max-Age":
        return Int(value).map { (0...86400).contains($0) } == true ? nil : "is not a number of seconds from 0 to 86400"
    case "Access-Control-Allow-Methods":
        let given = value.split(separator: ",").map { String($0.filter { $0 != " " }) }
        return value == "*" || given.allSatisfy(methods.contains)
            ? nil : "is not * or a comma-separated list of \(methods.joined(separator: ", "))"
    case "X-Content-Type-Options":
        return value == "nosniff" ? nil : "is not nosniff"
    case "X-Frame-Options":
        return value == "DENY" || value == "SAMEORIGIN" || value.hasPrefix("ALLOW-FROM ")
            ? nil : "is not DENY, SAMEORIGIN or ALLOW-FROM <uri>"
    default:
        return nil
    }
}

/// `ListenerAttributes` of an application load balancer's HTTP and HTTPS listeners: the Server header of
/// its own answers, and the response headers it adds.
let applicationListenerAttributes: [Attribute<ListenerConfiguration>] =
    [.boolean("routing.http.response.server.enabled", \.serverHeader, default: true)]
    + applicationResponseHeaders.enumerated().map { index, entry in
        let header = entry.header
        return .text(entry.key, \ListenerConfiguration.responseHeaderValues[index], default: "") { value in
            responseHeaderProblem(header, value)
        }
    }

/// What is wrong with `name` as an HTTP field name, or nil.
func headerNameProblem(_ name: String) -> String? {
    let token = name.utf8.allSatisfy { byte in
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2D
    }
    return (1...40).contains(name.utf8.count) && token ? nil : "is not a header name (1-40 letters, digits and -)"
}

/// An HTTPS listener's: the HTTP listener's, and the names of the TLS headers it adds to requests.
let secureListenerAttributes: [Attribute<ListenerConfiguration>] =
    applicationListenerAttributes + [
        .text(
            "routing.http.request.x_amzn_tls_version.header_name", \.tlsVersionHeaderName,
            default: "X-Amzn-Tls-Version", valid: headerNameProblem),
        .text(
            "routing.http.request.x_amzn_tls_cipher_suite.header_name", \.tlsCipherSuiteHeaderName,
            default: "X-Amzn-Tls-Cipher-Suite", valid: headerNameProblem),
    ]

/// `LoadBalancerAttributes` of a Network Load Balancer.
let loadBalancerAttributes: [Attribute<LoadBalancerAttributes>] = [
    .boolean("deletion_protection.enabled", \.deletionProtection, default: false),
    .boolean("load_balancing.cross_zone.enabled", \.crossZone, default: false),
    .boolean("access_logs.s3.enabled", \.accessLogsEnabled, default: false),
    .text("access_logs.s3.bucket", \.accessLogsBucket, default: ""),
    .text("access_logs.s3.prefix", \.accessLogsPrefix, default: ""),
    .boolean("ipv6.deny_all_igw_traffic", \.ipv6DenyAllIGWTraffic, default: false),
    .boolean("zonal_shift.config.enabled", \.zonalShift, default: false),
    .text("dns_record.client_routing_policy", \.clientRoutingPolicy, default: "any_availability_zone") {
        ["any_availability_zone", "availability_zone_affinity", "partial_availability_zone_affinity"]
            .contains($0)
            ? nil
            : "is not any_availability_zone, availability_zone_affinity or partial_availability_zone_affinity"
    },
    // AWS's range is the valid one: a node has at most 7 secondary addresses per subnet.
    .integer("secondary_ips.auto_assigned.per_subnet", \.secondaryIPsPerSubnet, default: 0, valid: 0...7),
]

/// `LoadBalancerAttributes` of an Application Load Balancer (the ALB guide's list): the ones the HTTP
/// proxy acts on first.
let applicationLoadBalancerAttributes: [Attribute<LoadBalancerAttributes>] = [
    .boolean("deletion_protection.enabled", \.deletionProtection, default: false),
    .integer("idle_timeout.timeout_seconds", \.idleTimeoutSeconds, default: 60, valid: 1...4000),
    .integer("client_keep_alive.seconds", \.clientKeepAliveSeconds, default: 3600, valid: 60...604800),
    .text("routing.http.xff_header_processing.mode", \.xffHeaderProcessingMode, default: "append") {
        ["append", "preserve", "remove"].contains($0) ? nil : "is not append, preserve or remove"
    },
    .boolean("routing.http.xff_client_port.enabled", \.xffClientPort, default: false),
    .text("routing.http.desync_mitigation_mode", \.desyncMitigationMode, default: "defensive") {
        ["monitor", "defensive", "strictest"].contains($0) ? nil : "is not monitor, defensive or strictest"
    },
    .boolean("routing.http.drop_invalid_header_fields.enabled", \.dropInvalidHeaderFields, default: false),
    .boolean("routing.http.preserve_host_header.enabled", \.preserveHostHeader, default: false),
    .boolean("routing.http2.enabled", \.http2Enabled, default: true),
    .boolean(
        "routing.http.x_amzn_tls_version_and_cipher_suite.enabled", \.xAmznTLSVersionAndCipherSuite, default: false),
    .boolean("routing.http.x_amzn_mtls_clientcert.enabled", \.xAmznMTLSClientCert, default: false),
    .boolean("waf.fail_open.enabled", \.wafFailOpen, default: false),
    .boolean("access_logs.s3.enabled", \.accessLogsEnabled, default: false),
    .text("access_logs.s3.bucket", \.accessLogsBucket, default: ""),
    .text("access_logs.s3.prefix", \.accessLogsPrefix, default: ""),
    .boolean("zonal_shift.config.enabled", \.zonalShift, default: false),
]

/// Looks a key up in a table (built once per table, so a file with many attributes stays linear).
package struct AttributeIndex<Model>: Sendable {
    package let table: [Attribute<Model>]
    private let positions: [String: Int]

    package init(_ table: [Attribute<Model>]) {
        self.table = table
        positions = Dictionary(uniqueKeysWithValues: table.enumerated().map { ($1.key, $0) })
    }

    package subscript(key: String) -> Attribute<Model>? { positions[key].map { table[$0] } }

    package var keys: [String] { table.map(\.key) }

    /// The key of the attribute that sets `field`.
    package func key(of field: PartialKeyPath<Model>) -> String {
        guard let row = table.first(where: { $0.field == "\(field)" }) else {
            preconditionFailure("no attribute sets \(field)")
        }
        return row.key
    }

    /// Every attribute at AWS's default for `type`.
    func applyDefaults(to model: inout Model, type: TargetType?) {
        for attribute in table {
            if let value = attribute.defaultValue(type) { attribute.set(&model, value) }
        }
    }

    /// Every attribute with its value in force, as `describe-*-attributes` lists them.
    package func describe(_ model: Model) -> [(key: String, value: String)] {
        table.compactMap { attribute in attribute.get(model).map { (attribute.key, $0) } }
    }
}

extension TargetGroupConfiguration {
    package static let attributeIndex = AttributeIndex(targetGroupAttributes)
    package static let applicationIndex = AttributeIndex(applicationTargetGroupAttributes)

    /// The attribute table of a group of this protocol: an application load balancer's for HTTP and HTTPS.
    package static func index(_ transport: TransportProtocol) -> AttributeIndex<TargetGroupConfiguration> {
        transport.isHTTP ? applicationIndex : attributeIndex
    }

    /// Sets the protocol, and AWS's attribute defaults for it.
    package mutating func setProtocol(_ transport: TransportProtocol) {
        protocolName = transport
        if transport.isHTTP {
            Self.applicationIndex.applyDefaults(to: &self, type: targetType)
            preserveClientIP = false
        }
    }
}

extension ListenerConfiguration {
    package static let attributeIndex = AttributeIndex(listenerAttributes)
    package static let applicationIndex = AttributeIndex(applicationListenerAttributes)
    package static let secureIndex = AttributeIndex(secureListenerAttributes)

    /// The attribute table of a listener of this protocol: an application load balancer's for HTTP and HTTPS.
    package static func index(_ transport: TransportProtocol) -> AttributeIndex<ListenerConfiguration> {
        transport == .https ? secureIndex : transport.isHTTP ? applicationIndex : attributeIndex
    }
}

extension LoadBalancerAttributes {
    package static let attributeIndex = AttributeIndex(loadBalancerAttributes)
    package static let applicationIndex = AttributeIndex(applicationLoadBalancerAttributes)
}
