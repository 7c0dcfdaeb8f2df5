import Foundation
import ProxyProtocol

/// Every problem found in a configuration, each naming its JSON path.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var problems: [String]
    public var description: String { problems.joined(separator: "\n") }

    package init(problems: [String]) { self.problems = problems }
}

/// The result of checking a configuration: the configuration, and warnings for values AWS itself would
/// refuse (with `strict`, those are errors and there is no configuration).
public struct LoadedConfiguration: Sendable {
    public var configuration: Configuration
    public var warnings: [String]
    /// What reading it skipped on purpose (a template's other resources): said, never an error.
    public var notes: [String] = []
}

public enum ConfigLoader {
    /// Checks the whole document; nothing half-applies: it returns a configuration or throws every
    /// problem. `name` (the file) starts a syntax error's line.
    public static func load(data: Data, strict: Bool = false, name: String = "configuration") throws
        -> LoadedConfiguration
    {
        var root: JSONValue
        let duplicates: [String]
        do {
            (root, duplicates) = try JSONParser.parse([UInt8](data))
        } catch {
            if CloudFormationTemplate.looksLikeYAML(String(decoding: data, as: UTF8.self)) {
                throw ConfigurationError(problems: [
                    "\(name): a CloudFormation template in YAML; localnlb reads templates in JSON: "
                        + "convert it (cdk synth --json, or cfn-flip) and pass the .json"
                ])
            }
            throw ConfigurationError(problems: ["\(name): not valid JSON: \(error)"])
        }
        var template: CloudFormationTemplate?
        if CloudFormationTemplate.isTemplate(root) {
            let translated = CloudFormationTemplate.translate(root)
            guard let document = translated.document, duplicates.isEmpty else {
                throw ConfigurationError(problems: duplicates + translated.template.problems)
            }
            root = document
            template = translated.template
        }
        var reader = ConfigReader()
        reader.errors = duplicates
        let configuration = reader.configuration(root)
        var problems = reader.errors
        if strict { problems += reader.warnings.map { $0 + " (an error under --strict)" } }
        let rename = { (problem: String) in template?.inTemplateTerms(problem) ?? problem }
        guard problems.isEmpty, let configuration else { throw ConfigurationError(problems: problems.map(rename)) }
        return LoadedConfiguration(
            configuration: configuration, warnings: reader.warnings.map(rename), notes: template?.notes ?? [])
    }
}

/// Walks the JSON, collecting errors and warnings with their paths.
package struct ConfigReader {
    package var errors: [String] = []
    package var warnings: [String] = []
    /// The instances an `Id=i-…` target may name (the file's `Instances`, or the model's).
    package var instances: [InstanceConfiguration] = []
    /// The trust stores a listener's `MutualAuthentication` may name.
    package var trustStores: [TrustStoreConfiguration] = []
    /// The home region and account, to read ARNs by (`Admin.Region`, `Admin.AccountId`).
    package var resourceNames = ResourceNames(region: "us-east-1", accountID: "000000000000")
    /// Names may end in `.region`, as the file keeps another region's resources (a file, not a request).
    package var allowsRegionSuffix = false

    /// The name to check by AWS's rules: `name` itself, or (in a file) the part before `.region`.
    mutating func regionSuffixChecked(_ name: String, _ path: String) -> String {
        let (shown, region) = ResourceNames.parts(name)
        guard let region else { return name }
        if !allowsRegionSuffix {
            error(path, "\"\(name)\" has a dot: AWS's names are letters, digits and hyphens")
        } else if !ResourceNames.isRegion(region) || region == resourceNames.region {
            error(path, "\"\(name)\": after the dot comes another region than Admin.Region (web.eu-west-1)")
        }
        return shown
    }

    package mutating func error(_ path: String, _ message: String) {
        errors.append("\(path.isEmpty ? "(root)" : path): \(message)")
    }
    mutating func warn(_ path: String, _ message: String) {
        warnings.append("\(path.isEmpty ? "(root)" : path): \(message)")
    }

    // MARK: Primitive readers

    package mutating func readObject(_ value: JSONValue, _ path: String, keys: [String]) -> [String: JSONValue]? {
        guard case .object(let object) = value else {
            error(path, "\(value.shown) is not an object")
            return nil
        }
        for key in object.keys.sorted() where !keys.contains(key) {
            error(
                "\(path.isEmpty ? "" : path + ".")\(key)", "unknown key (known here: \(keys.joined(separator: ", ")))")
        }
        return object
    }

    package mutating func array(_ value: JSONValue, _ path: String) -> [JSONValue]? {
        guard case .array(let items) = value else {
            error(path, "\(value.shown) is not a list")
            return nil
        }
        return items
    }

    package mutating func string(_ value: JSONValue, _ path: String) -> String? {
        guard case .string(let text) = value else {
            error(path, "\(value.shown) is not a string")
            return nil
        }
        return text
    }

    /// An integer given as a JSON number or a string of digits (AWS attribute values are strings).
    package mutating func integer(
        _ value: JSONValue, _ path: String, valid: ClosedRange<Int>, aws: ClosedRange<Int>? = nil
    )
        -> Int?
    {
        var number: Int?
        switch value {
        case .number(let n) where n == n.rounded() && abs(n) < 1e12: number = Int(n)
        case .string(let s): number = Int(s.trimmingCharacters(in: .whitespaces))
        default: break
        }
        guard let number else {
            error(path, "\(value.shown) is not a whole number")
            return nil
        }
        guard valid.contains(number) else {
            error(path, "\(value.shown) is out of range (\(valid.lowerBound)-\(valid.upperBound))")
            return nil
        }
        if let aws, !aws.contains(number) {
            warn(path, "\(value.shown) is outside AWS's range \(aws.lowerBound)-\(aws.upperBound); AWS would reject it")
        }
        return number
    }

    mutating func readPort(_ value: JSONValue, _ path: String) -> UInt16? {
        switch value {
        case .number(let n) where n == n.rounded() && abs(n) < 1e12 && !(1...65535).contains(Int(n)):
            error(path, "\(value.shown) is not a port (1-65535)")
            return nil
        case .string(let s) where Int(s).map({ !(1...65535).contains($0) }) ?? false:
            error(path, "\(value.shown) is not a port (1-65535)")
            return nil
        default:
            return integer(value, path, valid: 1...65535).map { UInt16($0) }
        }
    }

    mutating func boolean(_ value: JSONValue, _ path: String) -> Bool? {
        switch value {
        case .bool(let b): return b
        case .string("true"): return true
        case .string("false"): return false
        default:
            error(path, "\(value.shown) is not true or false")
            return nil
        }
    }

    package mutating func choice<T: RawRepresentable>(_ value: JSONValue, _ path: String, _: T.Type, names: [String])
        -> T?
    where T.RawValue == String {
        guard let text = value.attributeString, let result = T(rawValue: text) else {
            error(path, "\(value.shown) is not one of \(names.joined(separator: ", "))")
            return nil
        }
        return result
    }

    /// A listener's or target group's `Protocol`: TCP, UDP, TCP_UDP or TLS (a network load balancer's),
    /// HTTP or HTTPS (an application load balancer's).
    mutating func transportProtocol(_ value: JSONValue, _ path: String) -> TransportProtocol? {
        guard let text = string(value, path) else { return nil }
        if let given = TransportProtocol(rawValue: text) { return given }
        error(
            path,
            "\"\(text)\" is not a protocol localnlb serves (TCP, UDP, TCP_UDP, TLS for network load balancers; "
                + "HTTP, HTTPS for application ones)")
        return nil
    }

    mutating func readAddress(_ value: JSONValue, _ path: String) -> IPAddress? {
        guard let text = string(value, path) else { return nil }
        guard let address = IPAddress(text), !text.hasPrefix("[") else {
            error(path, "\"\(text)\" is not an IPv4 or IPv6 address (host names are not resolved)")
            return nil
        }
        return address
    }

    /// `Tags`: at most 50, keys of 1–128 characters, values of at most 256 (AWS's limits).
    package mutating func tags(_ value: JSONValue, _ path: String) -> [(key: String, value: String)] {
        let list = attributeList(value, path)
        if list.count > 50 { error(path, "\(list.count) tags; a resource has at most 50") }
        return list.compactMap { key, given in
            let at = "\(path)[\"\(key)\"]"
            guard let text = given.attributeString else {
                error(at, "\(given.shown) is not a string")
                return nil
            }
            guard (1...128).contains(key.count), text.count <= 256 else {
                error(at, "a tag key has 1-128 characters and a value at most 256")
                return nil
            }
            return (key, text)
        }
    }

    /// `[{"Key": …, "Value": …}]` as an ordered list of key and value, checked for duplicates.
    package mutating func attributeList(_ value: JSONValue, _ path: String) -> [(key: String, value: JSONValue)] {
        guard let items = array(value, path) else { return [] }
        var result: [(key: String, value: JSONValue)] = []
        var seen = Set<String>()
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let object = readObject(item, itemPath, keys: ["Key", "Value"]) else { continue }
            guard let keyValue = object["Key"] else {
                error(itemPath, "missing Key")
                continue
            }
            guard let key = string(keyValue, itemPath + ".Key") else { continue }
            guard let attribute = object["Value"] else {
                error("\(path)[\"\(key)\"]", "missing Value")
                continue
            }
            guard seen.insert(key).inserted else {
                error("\(path)[\"\(key)\"]", "given twice")
                continue
            }
            result.append((key, attribute))
        }
        return result
    }

    // MARK: The document

    package mutating func configuration(_ root: JSONValue) -> Configuration? {
        let keys = [
            "LoadBalancers", "LoadBalancer", "Listeners", "TargetGroups", "Admin", "Subnets", "Dns", "Instances",
            "TrustStores",
        ]
        guard let top = readObject(root, "", keys: keys) else { return nil }
        let admin = top["Admin"].map { self.admin($0) } ?? AdminConfiguration()
        if let admin { resourceNames = ResourceNames(region: admin.region, accountID: admin.accountID) }
        allowsRegionSuffix = true
        let subnets = top["Subnets"].map { self.subnets($0) } ?? []
        instances = top["Instances"].map { self.instances($0) } ?? []
        trustStores = top["TrustStores"].map { self.trustStores($0) } ?? []
        var balancers: [LoadBalancerConfiguration] = []
        if let value = top["LoadBalancer"] {
            if top["LoadBalancers"] != nil {
                error("LoadBalancer", "given beside LoadBalancers: put every load balancer in LoadBalancers")
            }
            balancers = loadBalancer(value, "LoadBalancer").map { [$0] } ?? []
        } else if let value = top["LoadBalancers"], let items = array(value, "LoadBalancers") {
            for (index, item) in items.enumerated() {
                let path = "LoadBalancers[\(index)]"
                guard let balancer = loadBalancer(item, path) else { continue }
                if balancers.contains(where: { $0.name == balancer.name }) {
                    error(path + ".Name", "\"\(balancer.name)\" is used by another load balancer")
                }
                balancers.append(balancer)
            }
        }
        let noneGiven = top["LoadBalancer"] == nil && top["LoadBalancers"] == nil

        var groups: [TargetGroupConfiguration] = []
        // Every name given, of valid groups and of groups with problems alike: a listener that forwards
        // to a group with a problem is not reported again as forwarding to a missing one.
        var declared = Set<String>()
        if let value = top["TargetGroups"], let items = array(value, "TargetGroups") {
            for (index, item) in items.enumerated() {
                if case .object(let object) = item, case .string(let name) = object["Name"],
                    !declared.insert(name).inserted
                {
                    error("TargetGroups[\(index)].Name", "\"\(name)\" is used by another target group")
                }
                if let group = targetGroup(item, "TargetGroups[\(index)]") { groups.append(group) }
            }
        }

        // A load balancer without listeners is valid, as on AWS: the ELBv2 API adds them later.
        var listeners: [ListenerConfiguration] = []
        if let listenersValue = top["Listeners"], let items = array(listenersValue, "Listeners") {
            if noneGiven && !items.isEmpty {
                // Listeners without a load balancer: one named localnlb, on 127.0.0.1.
                balancers = [
                    LoadBalancerConfiguration(
                        name: "localnlb",
                        nodes: [LoadBalancerNode(subnetID: "subnet-local", ipv4: .v4(IPv4Address(127, 0, 0, 1)))])
                ]
            }
            for (index, item) in items.enumerated() {
                let path = "Listeners[\(index)]"
                guard let listener = listener(item, path, loadBalancers: balancers.map(\.name)) else { continue }
                if listeners.contains(where: {
                    $0.loadBalancerName == listener.loadBalancerName && $0.port == listener.port
                }) {
                    error(
                        path + ".Port", "\(listener.port) is used by another listener of \(listener.loadBalancerName)")
                }
                if let balancer = balancers.first(where: { $0.name == listener.loadBalancerName }),
                    listener.protocolName.isHTTP != (balancer.type == .application)
                {
                    error(
                        path + ".Protocol",
                        balancer.type == .application
                            ? "\(listener.protocolName.rawValue) is a network load balancer's protocol; "
                                + "\(balancer.name) is an application load balancer (HTTP or HTTPS)"
                            : "\(listener.protocolName.rawValue) is an application load balancer's protocol; "
                                + "\(balancer.name) is a network load balancer (give it Type application)")
                }
                if let group = groups.first(where: { $0.name == listener.targetGroupName }),
                    !listener.protocolName.groupProtocols.contains(group.protocolName)
                {
                    error(
                        path + ".DefaultActions[0]",
                        "a \(listener.protocolName.rawValue) listener forwards to a "
                            + listener.protocolName.groupProtocols.map(\.rawValue).joined(separator: " or ")
                            + " target group; \(group.name) is \(group.protocolName.rawValue)")
                }
                // AWS: a forward to several groups with a sticky one needs target group stickiness too.
                func checkGroupStickiness(_ action: RuleAction?, _ at: String) {
                    guard case .weightedForward(let weighted, 0)? = action, weighted.count > 1,
                        let sticky = weighted.first(where: { entry in
                            groups.first { $0.name == entry.name }?.stickinessEnabled == true
                        })
                    else { return }
                    error(
                        at + ".ForwardConfig.TargetGroupStickinessConfig",
                        "target group \(sticky.name) has stickiness.enabled: a forward to several target groups "
                            + "with a sticky one needs Enabled true and DurationSeconds here")
                }
                checkGroupStickiness(listener.defaultAction, path + ".DefaultActions[0]")
                for (ruleIndex, rule) in listener.rules.enumerated() {
                    let at = "\(path).Rules[\(ruleIndex)].Actions[0]"
                    checkGroupStickiness(rule.action, at)
                    for name in rule.action.targetGroupNames {
                        if let group = groups.first(where: { $0.name == name }) {
                            if !group.protocolName.isHTTP {
                                error(
                                    at,
                                    "a rule forwards to an HTTP target group; \(name) is \(group.protocolName.rawValue)"
                                )
                            }
                        } else {
                            error(at, "target group \"\(name)\" is not in TargetGroups")
                        }
                    }
                }
                for name in listener.defaultAction?.targetGroupNames.dropFirst() ?? [] {
                    if let group = groups.first(where: { $0.name == name }), !listener.protocolName.isHTTP {
                        if !listener.protocolName.groupProtocols.contains(group.protocolName) {
                            error(
                                path + ".DefaultActions[0]",
                                "a \(listener.protocolName.rawValue) listener forwards to a "
                                    + listener.protocolName.groupProtocols.map(\.rawValue).joined(separator: " or ")
                                    + " target group; \(group.name) is \(group.protocolName.rawValue)")
                        }
                    } else if let group = groups.first(where: { $0.name == name }) {
                        if !group.protocolName.isHTTP {
                            error(
                                path + ".DefaultActions[0]",
                                "\(name) is \(group.protocolName.rawValue), not HTTP or HTTPS")
                        }
                    } else {
                        error(path + ".DefaultActions[0]", "target group \"\(name)\" is not in TargetGroups")
                    }
                }
                if listener.targetGroupName.isEmpty && listener.defaultAction != nil {
                    // A redirect or fixed response: no group.
                } else if !declared.contains(listener.targetGroupName) {
                    error(
                        path + ".DefaultActions[0]",
                        "target group \"\(listener.targetGroupName)\" is not in TargetGroups")
                } else if let other = listeners.first(where: {
                    $0.targetGroupName == listener.targetGroupName && $0.loadBalancerName != listener.loadBalancerName
                }) {
                    error(
                        path + ".DefaultActions[0]",
                        "target group \"\(listener.targetGroupName)\" is already \(other.loadBalancerName)'s; "
                            + "a Network Load Balancer's target group serves one load balancer")
                }
                listeners.append(listener)
            }
        }
        guard errors.isEmpty else { return nil }
        var configuration = Configuration(
            loadBalancers: balancers, listeners: listeners, targetGroups: groups, admin: admin)
        configuration.subnets = subnets
        configuration.instances = instances
        configuration.trustStores = trustStores
        configuration.dns = top["Dns"].map { self.dns($0) } ?? DNSConfiguration()
        checkZones(configuration)
        // The control API's and DNS responder's addresses count when the file gives them: a template's
        // daemon moves its defaults with --admin-address and --dns-address.
        if let problem = configuration.endpointConflict(admin: top["Admin"] != nil, dns: top["Dns"] != nil) {
            error(problem.path, problem.message)
        }
        checkAddressFamilies(nodes: balancers.flatMap(\.nodes), groups: groups)
        for usage in configuration.quotaUsage() where usage.count > usage.max {
            warn("quota", "\(usage.count) \(usage.what): AWS's default quota is \(usage.max) (\(usage.code) there)")
        }
        return errors.isEmpty ? configuration : nil
    }

    /// `TrustStores`: `[{Name, CaCertificatesBundleS3Bucket, CaCertificatesBundleS3Key}]`, the key a path
    /// on this machine.
    package mutating func trustStores(_ value: JSONValue) -> [TrustStoreConfiguration] {
        guard let items = array(value, "TrustStores") else { return [] }
        var result: [TrustStoreConfiguration] = []
        for (index, item) in items.enumerated() {
            guard let store = trustStore(item, "TrustStores[\(index)]") else { continue }
            if result.contains(where: { $0.name == store.name }) {
                error("TrustStores[\(index)].Name", "\"\(store.name)\" is given twice")
            }
            result.append(store)
        }
        return result
    }

    package mutating func trustStore(_ value: JSONValue, _ path: String) -> TrustStoreConfiguration? {
        guard
            let object = readObject(
                value, path,
                keys: [
                    "Name", "CaCertificatesBundleS3Bucket", "CaCertificatesBundleS3Key", "RevocationContents", "Tags",
                ])
        else { return nil }
        var fields: [String] = []
        for key in ["Name", "CaCertificatesBundleS3Bucket", "CaCertificatesBundleS3Key"] {
            guard let given = object[key], let text = string(given, "\(path).\(key)"), !text.isEmpty else {
                if object[key] == nil { error("\(path).\(key)", "missing") }
                return nil
            }
            fields.append(text)
        }
        let name = regionSuffixChecked(fields[0], path + ".Name")
        let allowed = name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        guard (1...32).contains(name.count), allowed, !name.hasPrefix("-"), !name.hasSuffix("-") else {
            error(path + ".Name", "\"\(fields[0])\": a trust store's name has 1-32 letters, digits and hyphens")
            return nil
        }
        guard fields[2].hasPrefix("/") else {
            error(
                path + ".CaCertificatesBundleS3Key",
                "\"\(fields[2])\": localnlb has no S3 and reads the key as a path on this machine; give an absolute "
                    + "path to a PEM bundle")
            return nil
        }
        var store = TrustStoreConfiguration(name: fields[0], bucket: fields[1], key: fields[2])
        if let given = object["RevocationContents"], let items = array(given, path + ".RevocationContents") {
            store.revocations = revocations(items, path + ".RevocationContents")
        }
        return store
    }

    /// A trust store's `RevocationContents`: `[{S3Bucket, S3Key, RevocationType: CRL, RevocationId}]`, ids
    /// numbered in order where not given (the file keeps AddTrustStoreRevocations' ids).
    mutating func revocations(_ items: [JSONValue], _ path: String) -> [TrustStoreConfiguration.Revocation] {
        var result: [TrustStoreConfiguration.Revocation] = []
        for (index, item) in items.enumerated() {
            let at = "\(path)[\(index)]"
            guard
                let object = readObject(
                    item, at, keys: ["S3Bucket", "S3Key", "S3ObjectVersion", "RevocationType", "RevocationId"])
            else { continue }
            if let type = object["RevocationType"].flatMap({ string($0, at + ".RevocationType") }), type != "CRL" {
                error(at + ".RevocationType", "\"\(type)\": CRL is the one revocation type")
                continue
            }
            guard let keyValue = object["S3Key"], let key = string(keyValue, at + ".S3Key") else {
                if object["S3Key"] == nil { error(at + ".S3Key", "missing") }
                continue
            }
            guard key.hasPrefix("/") else {
                error(
                    at + ".S3Key",
                    "\"\(key)\": localnlb has no S3 and reads the key as a path on this machine; give an absolute "
                        + "path to a PEM CRL")
                continue
            }
            let bucket = object["S3Bucket"].flatMap { string($0, at + ".S3Bucket") } ?? ""
            var id = (result.map(\.id).max() ?? 0) + 1
            if let given = object["RevocationId"] {
                guard let number = integer(given, at + ".RevocationId", valid: 1...1_000_000) else { continue }
                guard !result.contains(where: { $0.id == number }) else {
                    error(at + ".RevocationId", "\(number) is given twice")
                    continue
                }
                id = number
            }
            result.append(.init(id: id, bucket: bucket, key: key))
        }
        return result
    }

    /// A TLS listener's `MutualAuthentication`: `Mode` `verify` with a `TrustStoreArn` (or name); `off`.
    mutating func mutualAuthentication(_ value: JSONValue, _ path: String) -> MutualAuthentication? {
        guard
            let object = readObject(
                value, path,
                keys: [
                    "Mode", "TrustStoreArn", "IgnoreClientCertificateExpiry", "AdvertiseTrustStoreCaNames",
                    "ClientCertificateIdentityFilters",
                ])
        else { return nil }
        let mode = object["Mode"].flatMap { string($0, path + ".Mode") } ?? "off"
        switch mode {
        case "off": return nil
        case "verify": break
        case "passthrough":
            error(path + ".Mode", "\"passthrough\" is for Application Load Balancers; a Network Load Balancer verifies")
            return nil
        default:
            error(path + ".Mode", "\"\(mode)\" is not one of off, verify")
            return nil
        }
        guard let given = object["TrustStoreArn"].flatMap({ string($0, path + ".TrustStoreArn") }) else {
            if object["TrustStoreArn"] == nil {
                error(path + ".TrustStoreArn", "missing: verify mode needs a trust store")
            }
            return nil
        }
        let name = resourceNames.name(in: given, kind: "truststore") ?? given
        guard trustStores.contains(where: { $0.name == name }) else {
            error(path + ".TrustStoreArn", "\"\(given)\" is not a trust store here (TrustStores, CreateTrustStore)")
            return nil
        }
        var mutual = MutualAuthentication(trustStoreName: name)
        if let value = object["IgnoreClientCertificateExpiry"],
            let ignore = boolean(value, path + ".IgnoreClientCertificateExpiry")
        {
            mutual.ignoreClientCertificateExpiry = ignore
        }
        if let value = object["ClientCertificateIdentityFilters"],
            let items = array(value, path + ".ClientCertificateIdentityFilters")
        {
            for (index, item) in items.enumerated() {
                let at = "\(path).ClientCertificateIdentityFilters[\(index)]"
                guard let filter = readObject(item, at, keys: ["Action", "Field", "MatchType", "Value"]) else {
                    continue
                }
                let action = filter["Action"].flatMap { string($0, at + ".Action") } ?? "accept"
                if action != "accept" { error(at + ".Action", "\"\(action)\": accept is the one action") }
                guard let field = filter["Field"].flatMap({ string($0, at + ".Field") }),
                    ["subject-cn", "subject-ou", "san-dns", "san-uri"].contains(field)
                else {
                    error(at + ".Field", "one of subject-cn, subject-ou, san-dns, san-uri")
                    continue
                }
                let match = filter["MatchType"].flatMap { string($0, at + ".MatchType") } ?? ""
                guard match == "exact" || match == "prefix" else {
                    error(at + ".MatchType", "\"\(match)\" is not exact or prefix")
                    continue
                }
                guard let text = filter["Value"].flatMap({ string($0, at + ".Value") }), (1...256).contains(text.count),
                    text.allSatisfy({ $0.isASCII && !$0.isNewline })
                else {
                    error(at + ".Value", "1-256 printable ASCII characters")
                    continue
                }
                mutual.identityFilters.append(.init(field: field, prefix: match == "prefix", value: text))
            }
        }
        return mutual
    }

    /// AWS: a TLS listener's idle timeout is fixed at 350 s; `tcp.idle_timeout.seconds` is for TCP ones.
    package mutating func checkTLSAttributes(_ value: JSONValue, _ path: String, _ listener: ListenerConfiguration) {
        guard listener.protocolName == .tls, case .array(let items) = value else { return }
        for item in items {
            if case .object(let fields) = item, fields["Key"]?.attributeString == "tcp.idle_timeout.seconds" {
                error(
                    path,
                    "tcp.idle_timeout.seconds applies to TCP listeners: a TLS listener's idle timeout is fixed at "
                        + "350 s, as on AWS")
            }
        }
    }

    package enum Scheme: String { case internetFacing = "internet-facing", `internal` }
    package enum IPAddressType: String { case ipv4, dualstack }
    package enum OnOff: String { case on, off }

    /// A listener; its load balancer by `LoadBalancerArn` (an ARN or a name), which may be left out
    /// when there is one.
    package mutating func listener(_ value: JSONValue, _ path: String, loadBalancers: [String])
        -> ListenerConfiguration?
    {
        let keys = [
            "Port", "Protocol", "DefaultActions", "ListenerAttributes", "LoadBalancerArn", "Tags", "AlpnPolicy",
            "Certificates", "SslPolicy", "MutualAuthentication", "Rules",
        ]
        guard let object = readObject(value, path, keys: keys) else { return nil }
        let port = object["Port"].flatMap { readPort($0, path + ".Port") }
        if object["Port"] == nil { error(path + ".Port", "missing") }
        let transport = object["Protocol"].flatMap { transportProtocol($0, path + ".Protocol") } ?? .tcp
        var certificates: [String] = []
        var sslPolicy: String?
        var alpnPolicy: String?
        var mutual: MutualAuthentication?
        if transport == .tls, let value = object["MutualAuthentication"] {
            mutual = mutualAuthentication(value, path + ".MutualAuthentication")
        } else if object["MutualAuthentication"] != nil {
            error(path + ".MutualAuthentication", "applies to TLS listeners only (Protocol TLS)")
        }
        if transport.terminatesTLS {
            if let value = object["Certificates"], let items = array(value, path + ".Certificates") {
                for (index, item) in items.enumerated() {
                    let at = "\(path).Certificates[\(index)]"
                    guard let fields = readObject(item, at, keys: ["CertificateArn", "IsDefault"]) else { continue }
                    guard let arn = fields["CertificateArn"].flatMap({ string($0, at + ".CertificateArn") }) else {
                        if fields["CertificateArn"] == nil { error(at + ".CertificateArn", "missing") }
                        continue
                    }
                    if !(arn.hasPrefix("arn:aws:acm:") && arn.contains(":certificate/"))
                        && !(arn.hasPrefix("arn:aws:iam::") && arn.contains(":server-certificate/"))
                    {
                        error(
                            at + ".CertificateArn",
                            "\"\(arn)\" is not an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)")
                    }
                    certificates.append(arn)
                }
                // The file keeps the SNI list too (the first is the default); CreateListener takes one.
                if Set(certificates).count != certificates.count {
                    error(path + ".Certificates", "a certificate is given twice")
                }
            }
            if certificates.isEmpty && !errors.contains(where: { $0.hasPrefix(path + ".Certificates") }) {
                error(
                    path + ".Certificates",
                    "missing: a \(transport.rawValue) listener needs a certificate ([{\"CertificateArn\": \"arn:aws:acm:…\"}]; an ARN "
                        + "nobody imported is issued by localnlb's own certificate authority)")
            }
            if let value = object["SslPolicy"], let name = string(value, path + ".SslPolicy") {
                if SSLPolicy.all.contains(where: { $0.name == name }) {
                    sslPolicy = name
                } else if let reason = SSLPolicy.unservedReason(name) {
                    error(path + ".SslPolicy", reason)
                } else {
                    error(
                        path + ".SslPolicy",
                        "\"\(name)\" is not a security policy localnlb knows (DescribeSSLPolicies lists them)"
                            + Self.didYouMean(name, among: SSLPolicy.all.map(\.name)))
                }
            }
            if transport == .https, object["AlpnPolicy"] != nil {
                error(
                    path + ".AlpnPolicy",
                    "applies to TLS listeners (network load balancers); an HTTPS listener negotiates HTTP/1.1 here")
            } else if let value = object["AlpnPolicy"] {
                // CloudFormation gives a list of one; the API a string.
                var given = value
                if case .array(let items) = value, items.count == 1 { given = items[0] }
                if let name = string(given, path + ".AlpnPolicy") {
                    if ALPNPolicyNames.all.contains(name) {
                        alpnPolicy = name
                    } else {
                        error(
                            path + ".AlpnPolicy",
                            "\"\(name)\" is not one of \(ALPNPolicyNames.all.joined(separator: ", "))")
                    }
                }
            }
        } else {
            for key in ["AlpnPolicy", "Certificates", "SslPolicy"] where object[key] != nil {
                error("\(path).\(key)", "applies to TLS and HTTPS listeners only (Protocol TLS or HTTPS)")
            }
        }
        var balancer = loadBalancers.count == 1 ? loadBalancers[0] : nil
        if let value = object["LoadBalancerArn"], let given = string(value, path + ".LoadBalancerArn") {
            let name =
                resourceNames.name(in: given, kind: "loadbalancer/net") ?? ResourceNames.loadBalancerName(in: given)
                ?? given
            if loadBalancers.contains(name) {
                balancer = name
            } else {
                balancer = nil
                error(
                    path + ".LoadBalancerArn",
                    "\"\(given)\" is not a load balancer here (\(loadBalancers.isEmpty ? "none is given" : loadBalancers.joined(separator: ", ")))"
                )
            }
        } else if balancer == nil {
            error(
                path + ".LoadBalancerArn",
                loadBalancers.isEmpty
                    ? "missing, and no LoadBalancer is given"
                    : "missing: which of \(loadBalancers.joined(separator: ", ")) this listener is on")
        }
        let tags = object["Tags"].map { self.tags($0, path + ".Tags") } ?? []
        var applicationDefault: RuleAction?
        var groupName: String?
        if transport.isHTTP, let value = object["DefaultActions"] {
            // An application load balancer's default action: any one action a rule may have.
            if let items = array(value, path + ".DefaultActions") {
                if items.count == 1, let action = action(items[0], path + ".DefaultActions[0]") {
                    if case .forward(let name) = action {
                        groupName = name
                    } else {
                        applicationDefault = action
                        groupName = action.targetGroupNames.first ?? ""
                    }
                } else if items.count != 1 {
                    error(path + ".DefaultActions", "needs exactly one action, found \(items.count)")
                }
            }
        } else if let value = object["DefaultActions"], case .array(let items) = value, items.count == 1,
            case .object(let fields) = items[0], fields["ForwardConfig"] != nil
        {
            // A network load balancer's weighted target groups (docs/target-groups.md §9): a forward by
            // ForwardConfig, each new flow to one group by weight.
            if let action = action(items[0], path + ".DefaultActions[0]") {
                switch action {
                case .forward(let name):
                    groupName = name
                case .weightedForward:
                    applicationDefault = action
                    groupName = action.targetGroupNames.first ?? ""
                default:
                    error(
                        path + ".DefaultActions[0].Type",
                        "\"\(action.type)\" is not forward (the only action of a Network Load Balancer)")
                }
            }
        } else {
            groupName = object["DefaultActions"].flatMap { defaultAction($0, path + ".DefaultActions") }
        }
        if object["DefaultActions"] == nil { error(path + ".DefaultActions", "missing: one forward action is needed") }

        guard let port, let groupName, let balancer else { return nil }
        var listener = ListenerConfiguration(loadBalancerName: balancer, port: port, targetGroupName: groupName)
        listener.protocolName = transport
        listener.defaultAction = applicationDefault
        listener.tags = tags
        if transport.terminatesTLS {
            listener.certificateArns = certificates
            listener.sslPolicy = sslPolicy ?? SSLPolicy.defaultName
        }
        if transport == .tls {
            listener.alpnPolicy = alpnPolicy ?? "None"
            listener.mutualAuthentication = mutual
        }
        if let value = object["Rules"] {
            if transport.isHTTP {
                listener.rules = rules(value, path + ".Rules", listener: "\(balancer)/\(port)")
            } else {
                error(path + ".Rules", "listener rules are an application load balancer's (HTTP and HTTPS listeners)")
            }
        }
        if let value = object["ListenerAttributes"] {
            attributes(
                value, path + ".ListenerAttributes", index: ListenerConfiguration.index(transport), into: &listener,
                kind: "\(transport.rawValue) listener")
            checkTLSAttributes(value, path + ".ListenerAttributes", listener)
        }
        return listener
    }

    /// The one forward action; its target group by `TargetGroupName` or `TargetGroupArn` (an ARN or a name).
    mutating func defaultAction(_ value: JSONValue, _ path: String) -> String? {
        guard let items = array(value, path) else { return nil }
        guard items.count == 1 else {
            error(path, "needs exactly one action (a forward to a target group), found \(items.count)")
            return nil
        }
        let actionPath = path + "[0]"
        guard
            let action = readObject(items[0], actionPath, keys: ["Type", "TargetGroupName", "TargetGroupArn", "Order"])
        else { return nil }
        if let value = action["Type"], let type = string(value, actionPath + ".Type"), type != "forward" {
            error(actionPath + ".Type", "\"\(type)\" is not forward (the only action of a Network Load Balancer)")
        }
        if let value = action["Order"] { _ = integer(value, actionPath + ".Order", valid: 1...50000) }
        if let value = action["TargetGroupName"] { return string(value, actionPath + ".TargetGroupName") }
        if let value = action["TargetGroupArn"], let arn = string(value, actionPath + ".TargetGroupArn") {
            // arn:aws:elasticloadbalancing:region:account:targetgroup/NAME/ID (another region's: NAME.region)
            if let name = resourceNames.name(in: arn, kind: "targetgroup") { return name }
            let parts = arn.split(separator: "/")
            return arn.hasPrefix("arn:") && parts.count >= 2 ? String(parts[1]) : arn
        }
        error(actionPath, "missing TargetGroupName (or TargetGroupArn)")
        return nil
    }

    /// A target reached from the node's address needs a node address of its family.
    mutating func checkAddressFamilies(nodes: [LoadBalancerNode], groups: [TargetGroupConfiguration]) {
        guard !nodes.isEmpty else { return }
        for (groupIndex, group) in groups.enumerated() {
            for (index, target) in group.targets.enumerated() {
                let isV6 = target.address.isIPv6
                if !nodes.contains(where: { $0.addresses.contains { $0.isIPv6 == isV6 } }) {
                    error(
                        "TargetGroups[\(groupIndex)].Targets[\(index)]",
                        "\(target.endpoint) is \(isV6 ? "IPv6" : "IPv4") but no SubnetMapping has an "
                            + "\(isV6 ? "IPv6Address" : "PrivateIPv4Address") to reach it from")
                }
            }
        }
    }

    package init(errors: [String] = [], warnings: [String] = []) {
        self.errors = errors
        self.warnings = warnings
    }
}
