import Foundation
import LocalNLBDataPlane
import LocalNLBModel

/// DescribeAccountLimits, DescribeSSLPolicies, and the actions that change a load balancer after it is
/// made: SetSecurityGroups, SetIpAddressType, SetSubnets, Describe/ModifyCapacityReservation.
extension ControlPlane {
    func describeAccountLimits(_ form: QueryForm) throws(APIError) -> String {
        let members = AccountLimits.all.map {
            XML.text("Name", $0.name) + XML.text("Max", String(configuration.accountLimit($0.name)))
        }
        let (page, next) = try page(members, form)
        return XML.list("Limits", page) + (next.map { XML.text("NextMarker", $0) } ?? "")
    }

    func describeSSLPolicies(_ form: QueryForm) throws(APIError) -> String {
        var chosen = SSLPolicy.all
        let wanted = form.list("Names")
        if !wanted.isEmpty {
            chosen = try wanted.map { name throws(APIError) in
                guard let policy = SSLPolicy.all.first(where: { $0.name == name }) else {
                    throw APIError(
                        code: "SSLPolicyNotFound",
                        message: SSLPolicy.unservedReason(name) ?? "SSL policy '\(name)' not found")
                }
                return policy
            }
        }
        if let type = form["LoadBalancerType"] {
            guard ["application", "network", "gateway"].contains(type) else {
                throw .validation("LoadBalancerType '\(type)': must be application, network or gateway")
            }
            chosen = chosen.filter { $0.loadBalancerTypes.contains(type) }
        }
        let members = chosen.map { policy in
            XML.list("SslProtocols", policy.protocols.map(XML.escape))
                + XML.list(
                    "Ciphers",
                    policy.ciphers.enumerated().map { XML.text("Name", $1) + XML.text("Priority", String($0 + 1)) })
                + XML.text("Name", policy.name)
                + XML.list("SupportedLoadBalancerTypes", policy.loadBalancerTypes.map(XML.escape))
        }
        let (page, next) = try page(members, form)
        return XML.list("SslPolicies", page) + (next.map { XML.text("NextMarker", $0) } ?? "")
    }

    func setSecurityGroups(_ form: QueryForm) throws(APIError) -> String {
        let index = try loadBalancer(form["LoadBalancerArn"])
        let name = configuration.loadBalancers[index].name
        let enforce = "EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic"
        try commit(
            .setSecurityGroups(name: name, groups: form.list("SecurityGroups"), enforcePrivateLink: form[enforce]))
        let balancer = configuration.loadBalancers[index]
        return XML.list("SecurityGroupIds", balancer.securityGroups.map(XML.escape))
            + XML.text(enforce, balancer.enforceInboundRulesOnPrivateLink)
    }

    func setIpAddressType(_ form: QueryForm) throws(APIError) -> String {
        let index = try loadBalancer(form["LoadBalancerArn"])
        try commit(.setIpAddressType(name: configuration.loadBalancers[index].name, type: form["IpAddressType"]))
        return XML.text("IpAddressType", configuration.loadBalancers[index].ipAddressType)
    }

    func setSubnets(_ form: QueryForm) throws(APIError) -> String {
        let index = try loadBalancer(form["LoadBalancerArn"])
        let name = configuration.loadBalancers[index].name
        try commit(
            .setSubnets(
                name: name, subnets: form.list("Subnets"),
                mappings: form.structures(
                    "SubnetMappings", fields: ["SubnetId", "PrivateIPv4Address", "IPv6Address", "AllocationId"]),
                ipAddressType: form["IpAddressType"]))
        return XML.list("AvailabilityZones", availabilityZoneMembers(index))
            + XML.text("IpAddressType", configuration.loadBalancers[index].ipAddressType)
    }

    func modifyCapacityReservation(_ form: QueryForm) throws(APIError) -> String {
        let index = try loadBalancer(form["LoadBalancerArn"])
        var reset = false
        if let text = form["ResetCapacityReservation"] {
            guard text == "true" || text == "false" else {
                throw .validation("ResetCapacityReservation '\(text)': must be true or false")
            }
            reset = text == "true"
        }
        try commit(
            .modifyCapacityReservation(
                name: configuration.loadBalancers[index].name,
                capacityUnits: form["MinimumLoadBalancerCapacity.CapacityUnits"], reset: reset,
                wallClock: Date().timeIntervalSince1970, now: now, timeScale: options.timeScale))
        return capacityReservation(index)
    }

    /// The reservation as AWS describes it: per zone, `pending` until it is ready, then `provisioned`
    /// with the units spread evenly over the zones.
    func capacityReservation(_ index: Int) -> String {
        let balancer = configuration.loadBalancers[index]
        let wallClock = Date().timeIntervalSince1970
        let decreases = (balancer.capacityReservation?.decreases ?? []).filter { wallClock - $0 < 86_400 }
        var fields: [String] = []
        if let reservation = balancer.capacityReservation, reservation.lastModified > 0 {
            fields.append(XML.text("LastModifiedTime", rfc3339(epochSeconds: reservation.lastModified)))
        }
        fields.append(XML.text("DecreaseRequestsRemaining", String(max(0, 2 - decreases.count))))
        guard let reservation = balancer.capacityReservation, reservation.capacityUnits > 0 else {
            return fields.joined()
        }
        fields.append(
            XML.element("MinimumLoadBalancerCapacity", [XML.text("CapacityUnits", String(reservation.capacityUnits))]))
        let zones = configuration.zones(of: balancer).sorted()
        let pending = now < reservation.readyAt
        let share = Double(reservation.capacityUnits) / Double(max(1, zones.count))
        fields.append(
            XML.list(
                "CapacityReservationState",
                zones.map { zone in
                    XML.element("State", [XML.text("Code", pending ? "pending" : "provisioned")])
                        + XML.text("AvailabilityZone", zone)
                        + XML.text("EffectiveCapacityUnits", pending ? "0.0" : String(share))
                }))
        return fields.joined()
    }

    // MARK: Trust stores (mutual TLS)

    func createTrustStore(_ form: QueryForm) throws(APIError) -> String {
        var object: [String: JSONValue] = [:]
        for key in ["Name", "CaCertificatesBundleS3Bucket", "CaCertificatesBundleS3Key"] {
            if let value = form[key] { object[key] = .string(value) }
        }
        // The bundle is read now: one that is not there or holds no certificate is refused as AWS refuses it.
        if let key = form["CaCertificatesBundleS3Key"], key.hasPrefix("/") {
            let store = TrustStoreConfiguration(name: form["Name"] ?? "", bucket: "", key: key)
            do {
                let bundle = try trustStoreBundle(store)
                guard !(try TLSContext.certificates(bundle)).isEmpty else {
                    throw TLSError("\(key) holds no PEM certificate")
                }
            } catch {
                throw APIError(code: "InvalidCaCertificatesBundle", message: "\(error)")
            }
        }
        try commit(.createTrustStore(Given("CreateTrustStore", .object(object))))
        return XML.list("TrustStores", [trustStoreMember(form["Name"] ?? "")])
    }

    func trustStoreMember(_ name: String) -> String {
        let store = configuration.trustStores.first { $0.name == name }
        let count = store.flatMap { try? trustStoreBundle($0) }.flatMap { try? TLSContext.certificates($0).count } ?? 0
        return XML.text("Name", ResourceNames.shown(name)) + XML.text("TrustStoreArn", names.trustStore(name))
            + XML.text("Status", "ACTIVE") + XML.text("NumberOfCaCertificates", String(count))
            + XML.text("TotalRevokedEntries", String(store.map(revokedEntries) ?? 0))
    }

    func describeTrustStores(_ form: QueryForm) throws(APIError) -> String {
        var chosen = configuration.trustStores.map(\.name).filter(inRequestRegion)
        let arns = form.list("TrustStoreArns")
        let wanted = form.list("Names")
        if !arns.isEmpty {
            chosen = try arns.map { arn throws(APIError) in try trustStoreName(arn) }
        } else if !wanted.isEmpty {
            chosen = try wanted.map { shown throws(APIError) in
                let name = names.qualified(shown, region: requestRegionQualifier)
                guard configuration.trustStores.contains(where: { $0.name == name }) else {
                    throw APIError(code: "TrustStoreNotFound", message: "Trust store '\(shown)' not found")
                }
                return name
            }
        }
        let (page, next) = try page(chosen.map(trustStoreMember), form)
        return XML.list("TrustStores", page) + (next.map { XML.text("NextMarker", $0) } ?? "")
    }

    func trustStoreName(_ arn: String?) throws(APIError) -> String {
        guard let arn else { throw .validation("TrustStoreArn is required") }
        guard let name = names.name(in: arn, kind: "truststore"), arn == names.trustStore(name), inRequestRegion(name),
            configuration.trustStores.contains(where: { $0.name == name })
        else { throw APIError(code: "TrustStoreNotFound", message: "Trust store '\(arn)' not found") }
        return name
    }

    func deleteTrustStore(_ form: QueryForm) throws(APIError) -> String {
        try commit(.deleteTrustStore(name: try trustStoreName(form["TrustStoreArn"])))
        return ""
    }

    func addTrustStoreRevocations(_ form: QueryForm) throws(APIError) -> String {
        let name = try trustStoreName(form["TrustStoreArn"])
        let contents = form.structures(
            "RevocationContents", fields: ["S3Bucket", "S3Key", "S3ObjectVersion", "RevocationType"])
        var given: [(bucket: String, key: String)] = []
        for content in contents {
            if let type = content["RevocationType"], type != "CRL" {
                throw APIError(code: "InvalidRevocationContent", message: "RevocationType \(type): CRL is the one type")
            }
            guard let key = content["S3Key"] else { throw .validation("RevocationContents.member.N.S3Key is required") }
            // Read now: a list that is not there, or holds no CRL, is refused as AWS refuses it.
            if key.hasPrefix("/") {
                guard let data = FileManager.default.contents(atPath: key),
                    let text = String(data: data, encoding: .utf8),
                    let lists = try? TLSContext.revocationLists(text), !lists.isEmpty
                else {
                    throw APIError(code: "InvalidRevocationContent", message: "\(key) is not a readable PEM X509 CRL")
                }
                TLSContext.free(lists)
            }
            given.append((content["S3Bucket"] ?? "", key))
        }
        let before = Set(configuration.trustStores.first { $0.name == name }?.revocations.map(\.id) ?? [])
        try commit(.addTrustStoreRevocations(name: name, revocations: given))
        let added = (configuration.trustStores.first { $0.name == name }?.revocations ?? []).filter {
            !before.contains($0.id)
        }
        return XML.list("TrustStoreRevocations", added.map { revocationMember(name, $0) })
    }

    /// How many certificates a revocation list (or all of a store's) revokes, read from its file now.
    func revokedEntries(_ revocation: TrustStoreConfiguration.Revocation) -> Int {
        (FileManager.default.contents(atPath: revocation.key).flatMap { String(data: $0, encoding: .utf8) })
            .flatMap { try? TLSContext.revokedEntries($0) } ?? 0
    }

    func revokedEntries(_ store: TrustStoreConfiguration) -> Int {
        store.revocations.reduce(0) { $0 + revokedEntries($1) }
    }

    func revocationMember(_ store: String, _ revocation: TrustStoreConfiguration.Revocation) -> String {
        let count = revokedEntries(revocation)
        return XML.text("TrustStoreArn", names.trustStore(store)) + XML.text("RevocationId", String(revocation.id))
            + XML.text("RevocationType", "CRL") + XML.text("NumberOfRevokedEntries", String(count))
    }

    func describeTrustStoreRevocations(_ form: QueryForm) throws(APIError) -> String {
        let name = try trustStoreName(form["TrustStoreArn"])
        var revocations = configuration.trustStores.first { $0.name == name }?.revocations ?? []
        let wanted = form.list("RevocationIds").compactMap { Int($0) }
        if !wanted.isEmpty { revocations = revocations.filter { wanted.contains($0.id) } }
        let (page, next) = try page(revocations.map { revocationMember(name, $0) }, form)
        return XML.list("TrustStoreRevocations", page) + (next.map { XML.text("NextMarker", $0) } ?? "")
    }

    func removeTrustStoreRevocations(_ form: QueryForm) throws(APIError) -> String {
        let name = try trustStoreName(form["TrustStoreArn"])
        let ids = form.list("RevocationIds")
        guard !ids.isEmpty else { throw .validation("RevocationIds is required") }
        try commit(.removeTrustStoreRevocations(name: name, ids: ids.compactMap { Int($0) }))
        return ""
    }
}
