/// The model written back as a configuration file: what `ctl export-config` prints and `serve
/// --persist` keeps on disk. `check-config` accepts it, and `serve` replays it to the same topology,
/// ARNs (they derive from the names), attributes and targets.
extension Configuration {
    /// The file as `--persist` keeps it: every secret in it.
    package var document: JSONText { document(redactingSecrets: false) }

    /// With `redactingSecrets` (`GET /config`, `ctl export-config`), `Admin.Token` and
    /// `Admin.SecretAccessKey` read `AdminConfiguration.redacted`, which the reader refuses, naming the fix.
    package func document(redactingSecrets: Bool) -> JSONText {
        func list(_ pairs: [(key: String, value: String)]) -> JSONText {
            .array(pairs.map { .object([("Key", .string($0.key)), ("Value", .string($0.value))]) })
        }
        let balancers = loadBalancers.map { balancer -> JSONText in
            let mappings = balancer.nodes.map { node -> JSONText in
                var fields: [(String, JSONText)] = [("SubnetId", .string(node.subnetID))]
                if let ip = node.ipv4 { fields.append(("PrivateIPv4Address", .string(ip.description))) }
                if let ip = node.ipv6 { fields.append(("IPv6Address", .string(ip.description))) }
                return .object(fields)
            }
            var fields: [(String, JSONText)] = [
                ("Name", .string(balancer.name)), ("Type", .string(balancer.type.rawValue)),
                ("Scheme", .string(balancer.scheme)),
                ("IpAddressType", .string(balancer.ipAddressType)), ("SubnetMappings", .array(mappings)),
                (
                    "LoadBalancerAttributes",
                    list(LoadBalancerAttributes.index(balancer.type).describe(balancer.attributes))
                ),
                ("SecurityGroups", .array(balancer.securityGroups.map { .string($0) })),
            ]
            if !balancer.securityGroups.isEmpty {
                fields.append(
                    (
                        "EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic",
                        .string(balancer.enforceInboundRulesOnPrivateLink)
                    ))
            }
            if let reservation = balancer.capacityReservation, reservation.capacityUnits > 0 {
                fields.append(
                    (
                        "MinimumLoadBalancerCapacity",
                        .object([("CapacityUnits", .integer(Int64(reservation.capacityUnits)))])
                    ))
            }
            fields.append(("Tags", list(balancer.tags)))
            return .object(fields)
        }
        var top: [(String, JSONText)] = [
            ("LoadBalancers", .array(balancers)),
            (
                "Listeners",
                .array(
                    listeners.map { listener in
                        .object(
                            [
                                ("LoadBalancerArn", .string(listener.loadBalancerName)),
                                ("Port", .integer(Int64(listener.port))),
                                ("Protocol", .string(listener.protocolName.rawValue)),
                                (
                                    "DefaultActions",
                                    .array([
                                        listener.defaultAction?.document
                                            ?? .object([
                                                ("Type", .string("forward")),
                                                ("TargetGroupName", .string(listener.targetGroupName)),
                                            ])
                                    ])
                                ),
                                (
                                    "ListenerAttributes",
                                    list(
                                        ListenerConfiguration.index(listener.protocolName).describe(listener).filter {
                                            listener.protocolName != .tls || $0.key != "tcp.idle_timeout.seconds"
                                        })
                                ),
                                ("Tags", list(listener.tags)),
                            ] + listener.tlsFields
                                + (listener.rules.isEmpty ? [] : [("Rules", .array(listener.rules.map(\.document)))]))
                    })
            ),
            ("TargetGroups", .array(targetGroups.map(\.document))),
        ]
        if !subnets.isEmpty {
            top.append(
                (
                    "Subnets",
                    .array(
                        subnets.map { subnet in
                            var fields: [(String, JSONText)] = [
                                ("SubnetId", .string(subnet.subnetID)),
                                ("AvailabilityZone", .string(subnet.availabilityZone)),
                            ]
                            if let cidr = subnet.cidr { fields.append(("CidrBlock", .string(cidr.description))) }
                            if let cidr = subnet.ipv6Cidr {
                                fields.append(("Ipv6CidrBlock", .string(cidr.description)))
                            }
                            return .object(fields)
                        })
                ))
        }
        if !trustStores.isEmpty {
            top.append(
                (
                    "TrustStores",
                    .array(
                        trustStores.map { store in
                            var fields: [(String, JSONText)] = [
                                ("Name", .string(store.name)), ("CaCertificatesBundleS3Bucket", .string(store.bucket)),
                                ("CaCertificatesBundleS3Key", .string(store.key)),
                            ]
                            if !store.revocations.isEmpty {
                                fields.append(
                                    (
                                        "RevocationContents",
                                        .array(
                                            store.revocations.map { revocation in
                                                .object([
                                                    ("RevocationId", .integer(Int64(revocation.id))),
                                                    ("S3Bucket", .string(revocation.bucket)),
                                                    ("S3Key", .string(revocation.key)),
                                                    ("RevocationType", .string("CRL")),
                                                ])
                                            })
                                    ))
                            }
                            return .object(fields)
                        })
                ))
        }
        if !instances.isEmpty {
            top.append(
                (
                    "Instances",
                    .array(
                        instances.map { instance in
                            var fields: [(String, JSONText)] = [
                                ("InstanceId", .string(instance.instanceID)),
                                ("PrivateIpAddress", .string(instance.privateIPAddress.description)),
                            ]
                            if let zone = instance.availabilityZone {
                                fields.append(("AvailabilityZone", .string(zone)))
                            }
                            return .object(fields)
                        })
                ))
        }
        if let dns {
            if dns.explicit { top.append(("Dns", .object([("Address", .string(dns.address.description))]))) }
        } else {
            top.append(("Dns", .object([("Enabled", .bool(false))])))
        }
        if let admin {
            var fields: [(String, JSONText)] = [
                ("Address", .string(admin.address.description)), ("Region", .string(admin.region)),
                ("AccountId", .string(admin.accountID)),
            ]
            let shown = { (secret: String) in redactingSecrets ? AdminConfiguration.redacted : secret }
            if let token = admin.token { fields.append(("Token", .string(shown(token)))) }
            if let key = admin.accessKeyID, let secret = admin.secretAccessKey {
                fields += [("AccessKeyId", .string(key)), ("SecretAccessKey", .string(shown(secret)))]
            }
            if !admin.hostNames.isEmpty { fields.append(("HostNames", .array(admin.hostNames.map { .string($0) }))) }
            if admin.publicMetrics { fields.append(("PublicMetrics", .bool(true))) }
            if !admin.accountLimits.isEmpty {
                fields.append(
                    (
                        "AccountLimits",
                        .object(
                            admin.accountLimits.sorted { $0.key < $1.key }.map { ($0.key, .integer(Int64($0.value))) })
                    ))
            }
            top.append(("Admin", .object(fields)))
        } else {
            top.append(("Admin", .object([("Enabled", .bool(false))])))
        }
        return .object(top)
    }
}

extension TargetGroupConfiguration {
    package var document: JSONText {
        let check = healthCheck
        var fields: [(String, JSONText)] = [
            ("Name", .string(name)), ("Protocol", .string(protocolName.rawValue)), ("Port", .integer(Int64(port))),
            ("TargetType", .string(targetType.rawValue)), ("HealthCheckEnabled", .bool(check.enabled)),
            ("HealthCheckProtocol", .string(check.protocolName.rawValue)),
            ("HealthCheckPort", .string(check.port.map(String.init) ?? "traffic-port")),
            ("HealthCheckIntervalSeconds", .integer(Int64(check.intervalSeconds))),
            ("HealthCheckTimeoutSeconds", .integer(Int64(check.timeoutSeconds))),
            ("HealthyThresholdCount", .integer(Int64(check.healthyThreshold))),
            ("UnhealthyThresholdCount", .integer(Int64(check.unhealthyThreshold))),
        ]
        if let vpcID { fields.append(("VpcId", .string(vpcID))) }
        if let ipAddressType { fields.append(("IpAddressType", .string(ipAddressType))) }
        if check.protocolName.isHTTP {
            let codes = check.matcher.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
            fields.append(("HealthCheckPath", .string(check.path)))
            fields.append(("Matcher", .object([("HttpCode", .string(codes.joined(separator: ",")))])))
        }
        fields.append(
            (
                "TargetGroupAttributes",
                .array(
                    effectiveAttributes.map { .object([("Key", .string($0.key)), ("Value", .string($0.value))]) })
            ))
        fields.append(
            (
                "Targets",
                .array(
                    targets.map { target in
                        var item: [(String, JSONText)] = [("Id", .string(target.id))]
                        if target.id.hasPrefix("i-") {
                            item.append(("PrivateIpAddress", .string(target.address.description)))
                        }
                        item.append(("Port", .integer(Int64(target.port))))
                        if let zone = target.availabilityZone { item.append(("AvailabilityZone", .string(zone))) }
                        return .object(item)
                    })
            ))
        fields.append(("Tags", .array(tags.map { .object([("Key", .string($0.key)), ("Value", .string($0.value))]) })))
        return .object(fields)
    }
}

extension ListenerConfiguration {
    /// A TLS listener's certificates, policy and ALPN policy, as the file gives them.
    var tlsFields: [(String, JSONText)] {
        guard protocolName.terminatesTLS else { return [] }
        if protocolName == .https {
            return [
                ("Certificates", .array(certificateArns.map { .object([("CertificateArn", .string($0))]) })),
                ("SslPolicy", .string(sslPolicy ?? SSLPolicy.defaultName)),
            ]
        }
        return [
            ("Certificates", .array(certificateArns.map { .object([("CertificateArn", .string($0))]) })),
            ("SslPolicy", .string(sslPolicy ?? SSLPolicy.defaultName)), ("AlpnPolicy", .string(alpnPolicy ?? "None")),
        ]
            + (mutualAuthentication.map { mutual in
                [
                    (
                        "MutualAuthentication",
                        .object([
                            ("Mode", .string("verify")), ("TrustStoreArn", .string(mutual.trustStoreName)),
                            ("IgnoreClientCertificateExpiry", .bool(mutual.ignoreClientCertificateExpiry)),
                            (
                                "ClientCertificateIdentityFilters",
                                .array(
                                    mutual.identityFilters.map { filter in
                                        .object([
                                            ("Action", .string("accept")), ("Field", .string(filter.field)),
                                            ("MatchType", .string(filter.prefix ? "prefix" : "exact")),
                                            ("Value", .string(filter.value)),
                                        ])
                                    })
                            ),
                        ])
                    )
                ]
            } ?? [])
    }
}
