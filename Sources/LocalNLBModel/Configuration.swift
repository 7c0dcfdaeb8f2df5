import ProxyProtocol

/// The load balancers of one process, their listeners and target groups, as checked from the JSON
/// configuration (or made by the API).
public struct Configuration: Sendable {
    public var loadBalancers: [LoadBalancerConfiguration]
    /// Every load balancer's listeners; each names its own (`loadBalancerName`).
    public var listeners: [ListenerConfiguration]
    public var targetGroups: [TargetGroupConfiguration]
    /// The control API (`Admin`), or nil for none.
    public var admin: AdminConfiguration?
    /// `Subnets`: the zones nodes and targets are in. Empty: one zone for everything.
    public var subnets: [SubnetConfiguration] = []
    /// The DNS responder (`Dns`), or nil for none.
    public var dns: DNSConfiguration?
    /// `Instances`: the EC2 instances an `instance` target group's `Id=i-…` names, with their addresses.
    public var instances: [InstanceConfiguration] = []
    /// `TrustStores`: CA bundles mutual TLS verifies clients against.
    public var trustStores: [TrustStoreConfiguration] = []
    /// Zonal shifts (ARC), active and ended: state of the running balancer, never in the file.
    package var zonalShifts: [ZonalShift] = []

    public init(
        loadBalancers: [LoadBalancerConfiguration], listeners: [ListenerConfiguration],
        targetGroups: [TargetGroupConfiguration], admin: AdminConfiguration? = nil
    ) {
        self.loadBalancers = loadBalancers
        self.listeners = listeners
        self.targetGroups = targetGroups
        self.admin = admin
    }

    /// One load balancer and its listeners (each listener is made its).
    public init(
        loadBalancerName: String, nodes: [LoadBalancerNode], listeners: [ListenerConfiguration],
        targetGroups: [TargetGroupConfiguration], admin: AdminConfiguration? = nil
    ) {
        self.init(
            loadBalancers: [LoadBalancerConfiguration(name: loadBalancerName, nodes: nodes)],
            listeners: listeners.map {
                var listener = $0
                listener.loadBalancerName = loadBalancerName
                return listener
            }, targetGroups: targetGroups, admin: admin)
    }

    /// The index of the load balancer named `name`.
    public func loadBalancerIndex(_ name: String) -> Int? { loadBalancers.firstIndex { $0.name == name } }

    /// The nodes a listener listens on: its load balancer's.
    public func nodes(of listener: ListenerConfiguration) -> [LoadBalancerNode] {
        loadBalancerIndex(listener.loadBalancerName).map { loadBalancers[$0].nodes } ?? []
    }

    /// Every address a listener socket is bound to, by listener: its load balancer's node addresses,
    /// a TCP socket and a UDP one as its protocol asks (`TCP_UDP`: both).
    package var listenerEndpoints: [(configIndex: Int, endpoint: IPEndpoint, udp: Bool)] {
        listeners.enumerated().flatMap { index, listener in
            nodes(of: listener).flatMap(\.addresses).flatMap { address in
                let endpoint = IPEndpoint(ip: address, port: listener.port)
                return (listener.protocolName.carriesTCP ? [(index, endpoint, false)] : [])
                    + (listener.protocolName.carriesUDP ? [(index, endpoint, true)] : [])
            }
        }
    }

    /// The zone there is when no `Subnets` are given: the region's first.
    public var defaultZone: String { (admin?.region ?? "us-east-1") + "a" }

    /// The zone of a node: its subnet's.
    public func zone(of node: LoadBalancerNode) -> String {
        subnets.first { $0.subnetID == node.subnetID }?.availabilityZone ?? defaultZone
    }

    /// The zone of a target: its `AvailabilityZone` (`all` included), else that of the subnet whose CIDR
    /// holds its address, else (no `Subnets`) the one zone, else (subnets without CIDR blocks, all in
    /// one zone: a template's) that zone; nil when none of these places it.
    public func zone(of target: TargetConfiguration) -> String? {
        if let zone = target.availabilityZone { return zone }
        if subnets.isEmpty { return defaultZone }
        if let subnet = subnets.first(where: { $0.contains(target.address) }) { return subnet.availabilityZone }
        let zones = Set(subnets.map(\.availabilityZone))
        if zones.count == 1, subnets.allSatisfy({ $0.cidr == nil && $0.ipv6Cidr == nil }) { return zones.first }
        return nil
    }

    /// The zone of the listener's node with `address`.
    package func zone(of address: IPAddress, _ listener: ListenerConfiguration) -> String {
        nodes(of: listener).first { $0.addresses.contains(address) }.map(zone(of:)) ?? defaultZone
    }

    /// The zones a load balancer has a node in.
    public func zones(of balancer: LoadBalancerConfiguration) -> Set<String> { Set(balancer.nodes.map(zone(of:))) }

    /// Two listeners of different load balancers on one address and port (their nodes share an
    /// address): the listener that comes second, and what to change.
    package var endpointConflict: (path: String, message: String)? { endpointConflict(admin: true, dns: true) }

    /// Two listeners on one address and port, or a listener where the control API (`admin`) or the DNS
    /// responder (`dns`) listens: each would fail to open, so the file is refused at once, naming both.
    package func endpointConflict(admin checksAdmin: Bool, dns checksDNS: Bool) -> (path: String, message: String)? {
        func unspecified(_ ip: IPAddress) -> Bool { ip.bytes.allSatisfy { $0 == 0 } }
        func overlap(_ a: IPEndpoint, _ b: IPEndpoint) -> Bool {
            a.port == b.port && a.port != 0 && a.ip.isIPv6 == b.ip.isIPv6
                && (a.ip == b.ip || unspecified(a.ip) || unspecified(b.ip))
        }
        var services: [(path: String, endpoint: IPEndpoint, tcp: Bool, udp: Bool)] = []
        if checksAdmin, let admin { services.append(("Admin.Address", admin.address, true, false)) }
        if checksDNS, let dns { services.append(("Dns.Address", dns.address, true, true)) }
        if services.count == 2, overlap(services[0].endpoint, services[1].endpoint) {
            return (
                "Dns.Address",
                "\(services[1].endpoint) is also where the control API (Admin.Address) listens; give one another port"
            )
        }
        for (index, endpoint, udp) in listenerEndpoints {
            for service in services where (udp ? service.udp : service.tcp) && overlap(endpoint, service.endpoint) {
                return (
                    "Listeners[\(index)].Port",
                    "\(endpoint) is also where \(service.path) \(service.endpoint) listens; give the listener "
                        + "another port, or \(service.path) (serve --\(service.path == "Dns.Address" ? "dns" : "admin")"
                        + "-address) another address"
                )
            }
        }
        var seen: [String: Int] = [:]
        for (index, endpoint, udp) in listenerEndpoints where endpoint.port != 0 {
            let key = "\(udp ? "udp" : "tcp") \(endpoint)"
            if let first = seen[key], first != index {
                return (
                    "Listeners[\(index)].Port",
                    "\(endpoint) is also where \(listeners[first].loadBalancerName)'s listener listens; "
                        + "give the load balancers different node addresses (SubnetMappings) or another port"
                )
            }
            seen[key] = index
        }
        return nil
    }
}

/// A Network Load Balancer: its nodes (one per subnet), attributes and tags.
public struct LoadBalancerConfiguration: Sendable {
    public var name: String
    public var type = LoadBalancerType.network
    /// One per SubnetMapping: each of the load balancer's listeners listens on every node's addresses.
    public var nodes: [LoadBalancerNode]
    public var attributes = LoadBalancerAttributes()
    public var tags: [(key: String, value: String)] = []
    /// `internet-facing` (AWS's default) or `internal`.
    public var scheme = "internet-facing"
    /// `ipv4` or `dualstack`.
    public var ipAddressType = "ipv4"
    /// `SecurityGroups` as given: kept and described, not enforced (yet).
    public var securityGroups: [String] = []
    /// Made with security groups: only then can SetSecurityGroups change them (AWS's rule for NLBs).
    public var madeWithSecurityGroups = false
    /// `EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic`: `on` (AWS's default) or `off`.
    public var enforceInboundRulesOnPrivateLink = "on"
    /// `MinimumLoadBalancerCapacity` (ModifyCapacityReservation), nil when none is reserved.
    public var capacityReservation: CapacityReservation?

    public init(name: String, nodes: [LoadBalancerNode]) {
        self.name = name
        self.nodes = nodes
    }
}

/// A load balancer's reserved capacity: `CapacityUnits` over the whole load balancer, spread evenly over
/// its zones; `pending` until `readyAt` on the control plane's clock (AWS's hour, scaled), then
/// `provisioned`. AWS lets it fall at most twice a day: `decreases` are the wall-clock times of those.
public struct CapacityReservation: Sendable, Equatable {
    public var capacityUnits: Int
    public var readyAt: UInt64
    public var lastModified: Double
    public var decreases: [Double] = []

    public init(capacityUnits: Int, readyAt: UInt64, lastModified: Double) {
        self.capacityUnits = capacityUnits
        self.readyAt = readyAt
        self.lastModified = lastModified
    }
}

/// Where the control API listens (`Admin.Address`) and the bearer token it demands (`Admin.Token`).
public struct AdminConfiguration: Sendable, Equatable {
    public var address: IPEndpoint
    public var token: String?
    /// The region and account in ARNs and DNS names (`Admin.Region`, `Admin.AccountId`).
    public var region = "us-east-1"
    public var accountID = "000000000000"
    /// With both, the ELBv2 Query API checks every request's SigV4 signature against them
    /// (`Admin.AccessKeyId`, `Admin.SecretAccessKey`); without, it is served on loopback only.
    public var accessKeyID: String?
    public var secretAccessKey: String?
    /// Names besides `localhost` and IP literals that a request's `Host` may give (`Admin.HostNames`):
    /// any other name is refused, which is what stops a page behind a rebound DNS name.
    public var hostNames: [String] = []
    /// `GET /metrics` without credentials even when keys or a token are set (`Admin.PublicMetrics`),
    /// for a Prometheus that cannot sign.
    public var publicMetrics = false
    /// `Admin.AccountLimits`: quotas raised (or lowered) from AWS's defaults, by DescribeAccountLimits name.
    public var accountLimits: [String: Int] = [:]

    /// What `GET /config` writes in place of a secret.
    public static let redacted = "REDACTED"

    /// Whether requests must prove who they are: a token or keys are set.
    public var demandsCredentials: Bool { token != nil || secretAccessKey != nil }

    public static let defaultAddress = IPEndpoint(ip: .v4(IPv4Address(127, 0, 0, 1)), port: 8404)

    public init(address: IPEndpoint = AdminConfiguration.defaultAddress, token: String? = nil) {
        self.address = address
        self.token = token
    }
}

/// A trust store (CreateTrustStore): the CA bundle a mutual-TLS listener verifies client certificates
/// against. AWS reads it from S3; localnlb, which has no S3, reads `CaCertificatesBundleS3Key` as a path
/// on this machine (the bucket is kept and described).
public struct TrustStoreConfiguration: Sendable, Equatable {
    public var name: String
    public var bucket: String
    public var key: String
    public var tags: [String: String] = [:]
    /// AddTrustStoreRevocations: CRLs by RevocationId, each read (as the bundle) from a local path.
    public var revocations: [Revocation] = []

    public struct Revocation: Sendable, Equatable {
        public var id: Int
        public var bucket: String
        public var key: String

        public init(id: Int, bucket: String, key: String) {
            self.id = id
            self.bucket = bucket
            self.key = key
        }
    }

    public init(name: String, bucket: String, key: String) {
        self.name = name
        self.bucket = bucket
        self.key = key
    }
}

/// A TLS listener's `MutualAuthentication`: `verify` (the one mode NLB has) against a trust store.
public struct MutualAuthentication: Sendable, Equatable {
    public var trustStoreName: String
    public var ignoreClientCertificateExpiry = false
    /// `ClientCertificateIdentityFilters`: a verified client is admitted only if its certificate matches
    /// one (none: every verified client).
    public var identityFilters: [IdentityFilter] = []

    /// One `ClientCertificateIdentityFilter` (`Action` is always `accept`).
    public struct IdentityFilter: Sendable, Equatable {
        /// `subject-cn`, `subject-ou`, `san-dns` or `san-uri`.
        public var field: String
        public var prefix: Bool
        public var value: String

        public init(field: String, prefix: Bool, value: String) {
            self.field = field
            self.prefix = prefix
            self.value = value
        }

        /// AWS's matching: case-insensitive for names; for a URI the scheme and host are, the rest not.
        public func matches(_ candidate: String) -> Bool {
            func folded(_ text: String) -> String {
                guard field == "san-uri", let scheme = text.range(of: "://") else { return text.lowercased() }
                let rest = text[scheme.upperBound...]
                let hostEnd = rest.firstIndex(of: "/") ?? rest.endIndex
                return text[..<scheme.upperBound].lowercased() + rest[..<hostEnd].lowercased() + rest[hostEnd...]
            }
            let (have, want) = (folded(candidate), folded(value))
            return prefix ? have.hasPrefix(want) : have == want
        }
    }

    public init(trustStoreName: String) { self.trustStoreName = trustStoreName }
}

/// An EC2 instance as a target's `Id` names it: its id (`i-` and 8 or 17 hex digits), the address it
/// is reached on (`PrivateIpAddress`, as `AWS::EC2::Instance` has it), and its zone when given.
public struct InstanceConfiguration: Sendable, Equatable {
    public var instanceID: String
    public var privateIPAddress: IPAddress
    public var availabilityZone: String?

    public init(instanceID: String, privateIPAddress: IPAddress, availabilityZone: String? = nil) {
        self.instanceID = instanceID
        self.privateIPAddress = privateIPAddress
        self.availabilityZone = availabilityZone
    }

    /// AWS's shape of an instance id: `i-` and 8 or 17 lowercase hex digits.
    public static func isInstanceID(_ id: String) -> Bool {
        let digits = id.dropFirst(2)
        return id.hasPrefix("i-") && (digits.count == 8 || digits.count == 17)
            && digits.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }
}

/// A subnet (`AWS::EC2::Subnet`'s properties): the zone of the nodes in it and of the targets its
/// CIDRs hold.
public struct SubnetConfiguration: Sendable, Equatable {
    public var subnetID: String
    public var availabilityZone: String
    public var cidr: CIDR?
    public var ipv6Cidr: CIDR?

    public init(subnetID: String, availabilityZone: String, cidr: CIDR?, ipv6Cidr: CIDR? = nil) {
        self.subnetID = subnetID
        self.availabilityZone = availabilityZone
        self.cidr = cidr
        self.ipv6Cidr = ipv6Cidr
    }

    public func contains(_ address: IPAddress) -> Bool {
        (address.isIPv6 ? ipv6Cidr : cidr)?.contains(address) ?? false
    }
}

/// Where the responder for the load balancers' DNS names listens, UDP and TCP (`Dns.Address`).
public struct DNSConfiguration: Sendable, Equatable {
    public var address: IPEndpoint
    /// Given in the file: an address that cannot be opened is an error (the default's, a warning).
    public var explicit: Bool

    public static let defaultAddress = IPEndpoint(ip: .v4(IPv4Address(127, 0, 0, 1)), port: 8053)

    public init(address: IPEndpoint = DNSConfiguration.defaultAddress, explicit: Bool = false) {
        self.address = address
        self.explicit = explicit
    }
}

/// A load-balancer node: one SubnetMapping of the load balancer.
public struct LoadBalancerNode: Sendable, Hashable {
    public var subnetID: String
    public var ipv4: IPAddress?
    public var ipv6: IPAddress?

    public init(subnetID: String, ipv4: IPAddress?, ipv6: IPAddress? = nil) {
        self.subnetID = subnetID
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }

    public var addresses: [IPAddress] { [ipv4, ipv6].compactMap { $0 } }
}

/// A listener's or target group's protocol: `TCP`, `UDP`, or `TCP_UDP` (both on one port).
public enum TransportProtocol: String, Sendable {
    case tcp = "TCP"
    case udp = "UDP"
    case tcpUDP = "TCP_UDP"
    /// A listener that terminates TLS and forwards the plaintext to a TCP group.
    case tls = "TLS"
    /// An Application Load Balancer's listeners and target groups.
    case http = "HTTP"
    case https = "HTTPS"

    public var carriesTCP: Bool { self != .udp }
    public var carriesUDP: Bool { self == .udp || self == .tcpUDP }

    /// AWS's pairing: the target group protocols a listener of this protocol may forward to.
    public var groupProtocols: [TransportProtocol] {
        switch self {
        case .tcp: return [.tcp, .tcpUDP]
        case .udp: return [.udp, .tcpUDP]
        case .tcpUDP: return [.tcpUDP]
        case .tls: return [.tcp, .tcpUDP, .tls]
        case .http, .https: return [.http, .https]
        }
    }

    /// HTTP and HTTPS: an Application Load Balancer's.
    public var isHTTP: Bool { self == .http || self == .https }
    /// TLS and HTTPS listeners hold certificates and a security policy.
    public var terminatesTLS: Bool { self == .tls || self == .https }
}

public struct ListenerConfiguration: Sendable {
    /// The load balancer the listener belongs to.
    public var loadBalancerName: String
    public var port: UInt16
    public var protocolName: TransportProtocol = .tcp
    public var targetGroupName: String
    /// `tcp.idle_timeout.seconds`.
    public var idleTimeoutSeconds: Int
    /// `localnlb.connect_timeout.seconds`.
    public var connectTimeoutSeconds: Double
    public var tags: [(key: String, value: String)] = []
    /// A TLS listener's `Certificates`: the default first (an ACM or IAM ARN).
    public var certificateArns: [String] = []
    /// A TLS listener's `SslPolicy` (AWS's default for the API and CloudFormation when not given).
    public var sslPolicy: String?
    /// A TLS listener's `AlpnPolicy` (`None` when not given).
    public var alpnPolicy: String?
    /// A TLS listener's mutual TLS (verify mode), nil when off.
    public var mutualAuthentication: MutualAuthentication?
    /// An application load balancer listener's rules, by priority (its default action is the forward).
    public var rules: [ListenerRule] = []
    /// An application load balancer listener's `routing.http.response.server.enabled`: its own answers
    /// carry `Server: awselb/2.0`.
    public var serverHeader = true
    /// An HTTPS listener's names for the TLS headers (`routing.http.request.x_amzn_tls_version.header_name`,
    /// `…x_amzn_tls_cipher_suite.header_name`), sent with its load balancer's
    /// `routing.http.x_amzn_tls_version_and_cipher_suite.enabled`.
    public var tlsVersionHeaderName = "X-Amzn-Tls-Version"
    public var tlsCipherSuiteHeaderName = "X-Amzn-Tls-Cipher-Suite"
    /// An application load balancer listener's response headers, in the order of
    /// `applicationResponseHeaders` ("" for none): added to every response (docs/alb.md §24).
    public var responseHeaderValues = [String](repeating: "", count: applicationResponseHeaders.count)
    /// An application load balancer listener's default action when it is not one forward to
    /// `targetGroupName` (a redirect, a fixed response, a weighted forward); `targetGroupName` is then
    /// the weighted forward's first group, or empty.
    public var defaultAction: RuleAction?

    public init(
        loadBalancerName: String, port: UInt16, targetGroupName: String, idleTimeoutSeconds: Int = 350,
        connectTimeoutSeconds: Double = 10
    ) {
        self.loadBalancerName = loadBalancerName
        self.port = port
        self.targetGroupName = targetGroupName
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.connectTimeoutSeconds = connectTimeoutSeconds
    }
}

public enum TargetType: String, Sendable {
    case instance, ip
}

/// `localnlb.load_balancing.algorithm.type`.
public enum LoadBalancingAlgorithm: String, Sendable {
    case leastConnections = "least_connections"
    case roundRobin = "round_robin"
    /// The real NLB's choice: a hash of the flow's 5-tuple (docs/target-groups.md §2).
    case flowHash = "flow_hash"
    /// An application load balancer's `weighted_random` (every target the same weight): one at random.
    case random = "weighted_random"
}

/// `proxy_protocol_v2.client_to_server.header_placement`.
public enum HeaderPlacement: String, Sendable {
    /// AWS's default: the header leaves with the client's first bytes (docs/proxy-protocol.md §6).
    case onFirstAckWithPayload = "on_first_ack_with_payload"
    /// The header leaves as soon as the target connection is up.
    case onFirstAck = "on_first_ack"
}

/// Which PROXY header, if any, a target group sends at the start of each target connection.
public enum ProxyProtocolMode: Sendable, Equatable {
    case off
    /// Classic ELB's text line (`localnlb.proxy_protocol_v1.enabled`).
    case v1
    /// `proxy_protocol_v2.enabled`; `awsTLVs` is `localnlb.proxy_protocol_v2.tlvs` = `aws`.
    case v2(awsTLVs: Bool, vpcEndpointID: String?)
}

public enum HealthCheckProtocol: String, Sendable {
    case tcp = "TCP"
    case http = "HTTP"
    case https = "HTTPS"

    /// HTTP and HTTPS checks send a request and match its status line.
    public var isHTTP: Bool { self != .tcp }
}

public struct HealthCheckSettings: Sendable {
    public var enabled = true
    public var protocolName: HealthCheckProtocol = .tcp
    /// nil means `traffic-port`.
    public var port: UInt16?
    public var path = "/"
    public var intervalSeconds = 30
    public var timeoutSeconds = 10
    public var healthyThreshold = 5
    public var unhealthyThreshold = 2
    /// `Matcher.HttpCode` as ranges of status codes.
    public var matcher: [ClosedRange<Int>] = [200...399]
    /// An application load balancer's group: AWS's defaults for it, below.
    public var application = false

    public init() {}

    /// An HTTP target group's defaults (the ALB guide): HTTP to `/`, every 30 s, 5 s to answer, 5 passes
    /// to be healthy and 2 failures to be unhealthy, `200` only.
    public static var application: HealthCheckSettings {
        var settings = HealthCheckSettings()
        settings.application = true
        settings.protocolName = .http
        settings.timeoutSeconds = 5
        settings.matcher = [200...200]
        return settings
    }
}

public struct TargetConfiguration: Sendable, Hashable {
    /// As given: an address, or an instance id (`i-0123…`) for `instance` groups.
    public var id: String
    public var address: IPAddress
    public var port: UInt16
    /// As given (`all` for an address outside every subnet); nil: from the subnets' CIDRs.
    public var availabilityZone: String?

    public init(id: String, address: IPAddress, port: UInt16, availabilityZone: String? = nil) {
        self.id = id
        self.address = address
        self.port = port
        self.availabilityZone = availabilityZone
    }

    public var endpoint: IPEndpoint { IPEndpoint(ip: address, port: port) }
}

public struct TargetGroupConfiguration: Sendable {
    public var name: String
    public var port: UInt16
    /// `UDP` and `TCP_UDP` groups always preserve the client's address and never send PROXY headers.
    public var protocolName: TransportProtocol = .tcp
    public var targetType: TargetType
    public var targets: [TargetConfiguration]
    public var healthCheck = HealthCheckSettings()

    // The attributes' fields: their keys, ranges and defaults are in Attributes.swift.
    public var preserveClientIP = false
    public var proxyProtocolV2Enabled = false
    public var proxyProtocolV1Enabled = false
    public var proxyProtocolV2AWSTLVs = true
    public var vpcEndpointID: String?
    public var headerPlacement: HeaderPlacement = .onFirstAckWithPayload
    public var algorithm: LoadBalancingAlgorithm = .leastConnections
    public var deregistrationDelaySeconds = 300
    public var deregistrationConnectionTermination = false
    public var stickinessEnabled = false
    public var stickinessType = "source_ip"
    public var crossZone = "use_load_balancer_configuration"
    public var unhealthyConnectionTermination = true
    public var unhealthyDrainingIntervalSeconds = 0
    public var minimumHealthyTargetsCount = 1
    /// nil is `off`.
    public var minimumHealthyTargetsPercentage: Int?
    public var dnsFailoverMinimumHealthyTargetsCount = 1
    /// nil is `off`.
    public var dnsFailoverMinimumHealthyTargetsPercentage: Int?
    /// `IpAddressType` as given (`ipv4`, `ipv6`); nil: from the targets, as before.
    public var ipAddressType: String?
    /// `VpcId` as the caller gave it; nil: the emulator's own VPC id.
    public var vpcID: String?
    public var tags: [(key: String, value: String)] = []
    // An application load balancer's group (HTTP): attributes kept and described.
    public var lbCookieDurationSeconds = 86400
    public var appCookieName = ""
    public var appCookieDurationSeconds = 86400
    public var applicationAlgorithm = "round_robin"
    public var anomalyMitigation = "off"
    public var slowStartSeconds = 0
    /// Every attribute as configured, key and string value, in file order (for the API of a later issue).
    public var attributes: [(key: String, value: String)] = []

    public init(name: String, port: UInt16, targetType: TargetType, targets: [TargetConfiguration]) {
        self.name = name
        self.port = port
        self.targetType = targetType
        self.targets = targets
        Self.attributeIndex.applyDefaults(to: &self, type: targetType)
    }

    /// The PROXY header this group sends, from its three attributes.
    public var proxyProtocol: ProxyProtocolMode {
        get {
            if proxyProtocolV2Enabled {
                return .v2(awsTLVs: proxyProtocolV2AWSTLVs, vpcEndpointID: proxyProtocolV2AWSTLVs ? vpcEndpointID : nil)
            }
            return proxyProtocolV1Enabled ? .v1 : .off
        }
        set {
            proxyProtocolV1Enabled = newValue == .v1
            proxyProtocolV2Enabled = false
            if case .v2(let awsTLVs, let endpoint) = newValue {
                proxyProtocolV2Enabled = true
                proxyProtocolV2AWSTLVs = awsTLVs
                vpcEndpointID = endpoint
            }
        }
    }

    /// Every target group attribute with its value in force, as DescribeTargetGroupAttributes lists them.
    package var effectiveAttributes: [(key: String, value: String)] { Self.index(protocolName).describe(self) }
}

/// A Network Load Balancer's own attributes (`LoadBalancerAttributes`).
public struct LoadBalancerAttributes: Sendable {
    public var deletionProtection = false
    public var crossZone = false
    public var accessLogsEnabled = false
    public var accessLogsBucket = ""
    public var accessLogsPrefix = ""
    public var ipv6DenyAllIGWTraffic = false
    public var zonalShift = false
    public var clientRoutingPolicy = "any_availability_zone"
    /// `secondary_ips.auto_assigned.per_subnet`: secondary addresses per node (0-7), kept and described.
    public var secondaryIPsPerSubnet = 0
    // An Application Load Balancer's (docs/alb.md §18): the ones the proxy acts on, then those kept and described.
    public var idleTimeoutSeconds = 60
    public var clientKeepAliveSeconds = 3600
    public var xffHeaderProcessingMode = "append"
    public var xffClientPort = false
    public var desyncMitigationMode = "defensive"
    public var dropInvalidHeaderFields = false
    public var preserveHostHeader = false
    public var http2Enabled = true
    public var xAmznTLSVersionAndCipherSuite = false
    public var xAmznMTLSClientCert = false
    public var wafFailOpen = false

    public init() {
        Self.attributeIndex.applyDefaults(to: &self, type: nil)
        Self.applicationIndex.applyDefaults(to: &self, type: nil)
    }

    /// The attribute table of a load balancer of `type`.
    package static func index(_ type: LoadBalancerType) -> AttributeIndex<LoadBalancerAttributes> {
        type == .application ? applicationIndex : attributeIndex
    }
}

/// `Type`: what kind of load balancer (AWS's API default is `application`; localnlb's file default,
/// as before, `network`).
public enum LoadBalancerType: String, Sendable {
    case network, application
}
