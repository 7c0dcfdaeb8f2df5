/// A CloudFormation template in JSON (what `cdk synth --json` and `aws cloudformation get-template`
/// give), read as a configuration: its `AWS::ElasticLoadBalancingV2::LoadBalancer`, `TargetGroup` and
/// `Listener` resources become the file's `LoadBalancer`, `TargetGroups` and `Listeners`, with `Ref`,
/// `Fn::GetAtt`, `Fn::Join` and `Fn::Sub` resolved by logical id and `Parameters` by their `Default`.
/// The result goes through the same validator as a configuration file; its problems name the resource.
package struct CloudFormationTemplate {
    static let loadBalancerType = "AWS::ElasticLoadBalancingV2::LoadBalancer"
    static let targetGroupType = "AWS::ElasticLoadBalancingV2::TargetGroup"
    static let listenerType = "AWS::ElasticLoadBalancingV2::Listener"
    static let subnetType = "AWS::EC2::Subnet"
    static let instanceType = "AWS::EC2::Instance"
    static let listenerCertificateType = "AWS::ElasticLoadBalancingV2::ListenerCertificate"
    static let trustStoreType = "AWS::ElasticLoadBalancingV2::TrustStore"
    static let listenerRuleType = "AWS::ElasticLoadBalancingV2::ListenerRule"
    static let trustStoreRevocationType = "AWS::ElasticLoadBalancingV2::TrustStoreRevocation"

    static func isTemplate(_ root: JSONValue) -> Bool {
        guard case .object(let top) = root else { return false }
        return top["Resources"] != nil || top["AWSTemplateFormatVersion"] != nil
    }

    /// Whether `text` looks like a template in YAML (which this reader does not take).
    static func looksLikeYAML(_ text: String) -> Bool {
        let start = text.drop { $0.isWhitespace }
        return !start.hasPrefix("{") && !start.hasPrefix("[")
            && (text.contains("AWSTemplateFormatVersion") || text.contains("Resources:"))
    }

    package struct Resource {
        package var id: String
        package var type: String
        var properties: [String: JSONValue]
    }

    package var resources: [String: Resource] = [:]
    /// The logical ids of the template's other resources: a `Ref` to one gives its logical id.
    var otherResources = Set<String>()
    /// Each skipped resource's type, for the placeholder its `Fn::GetAtt` gives.
    var otherTypes: [String: String] = [:]
    /// The `AWS::EC2::Subnet`s' properties by logical id.
    var subnetResources: [String: [String: JSONValue]] = [:]
    /// The `AWS::ElasticLoadBalancingV2::ListenerCertificate`s' properties by logical id: SNI certificates.
    var listenerCertificates: [String: [String: JSONValue]] = [:]
    /// The `AWS::ElasticLoadBalancingV2::ListenerRule`s' properties by logical id: each joins its listener's `Rules`.
    var listenerRules: [String: [String: JSONValue]] = [:]
    /// The `AWS::ElasticLoadBalancingV2::TrustStore`s' properties by logical id.
    var trustStoreResources: [String: [String: JSONValue]] = [:]
    /// `AWS::ElasticLoadBalancingV2::TrustStoreRevocation`s: their lists join the store their
    /// `TrustStoreArn` names (a `Ref`), as `RevocationContents` of its `TrustStores` entry.
    var trustStoreRevocations: [(id: String, properties: [String: JSONValue])] = []
    /// The `AWS::EC2::Instance`s' properties by logical id.
    var instanceResources: [String: [String: JSONValue]] = [:]
    package var parameters: [String: JSONValue] = [:]
    package var names = ResourceNames(region: "us-east-1", accountID: "000000000000")
    /// Each translated entry's path in the configuration → the resource it came from, to name it in problems.
    var origins: [(path: String, resource: String)] = []
    package var problems: [String] = []
    package var notes: [String] = []

    /// The configuration document of `root`, or nil with `problems` when it cannot be read.
    static func translate(_ root: JSONValue) -> (document: JSONValue?, template: CloudFormationTemplate) {
        var template = CloudFormationTemplate()
        let document = template.translate(root)
        return (document, template)
    }

    private mutating func translate(_ root: JSONValue) -> JSONValue? {
        guard case .object(let top) = root, case .object(let declared)? = top["Resources"] else {
            problems.append("Resources: missing, or not an object of resources")
            return nil
        }
        // What the template says beyond its resources and parameters is named, not passed over in silence.
        let read: Set<String> = ["AWSTemplateFormatVersion", "Description", "Resources", "Parameters"]
        let unread = top.keys.filter { !read.contains($0) }.sorted()
        if !unread.isEmpty {
            notes.append(
                "template: top-level \(unread.joined(separator: ", ")) not read (localnlb reads Resources and "
                    + "Parameters' Defaults)")
        }
        if case .object(let declaredParameters)? = top["Parameters"] {
            for (name, value) in declaredParameters {
                guard case .object(let parameter) = value, let value = parameter["Default"] else {
                    problems.append("Parameters.\(name): no Default (localnlb resolves parameters to their Default)")
                    continue
                }
                parameters[name] = value
            }
        }
        var skipped: [String: Int] = [:]
        for (id, value) in declared {
            guard case .object(let resource) = value, case .string(let type)? = resource["Type"] else {
                problems.append("Resources.\(id): not a resource with a Type")
                continue
            }
            var properties: [String: JSONValue] = [:]
            if case .object(let given)? = resource["Properties"] { properties = given }
            if [Self.loadBalancerType, Self.targetGroupType, Self.listenerType].contains(type) {
                resources[id] = Resource(id: id, type: type, properties: properties)
            } else if type == Self.listenerCertificateType {
                listenerCertificates[id] = properties
            } else if type == Self.listenerRuleType {
                listenerRules[id] = properties
            } else if type == Self.trustStoreType {
                trustStoreResources[id] = properties
            } else if type == Self.trustStoreRevocationType {
                trustStoreRevocations.append((id, properties))
            } else if type == Self.subnetType || type == Self.instanceType {
                if type == Self.subnetType {
                    subnetResources[id] = properties
                } else {
                    instanceResources[id] = properties
                }
                otherResources.insert(id)
                otherTypes[id] = type
            } else {
                skipped[type, default: 0] += 1
                otherResources.insert(id)
                otherTypes[id] = type
            }
        }
        if !skipped.isEmpty {
            let total = skipped.values.reduce(0, +)
            let types = skipped.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: ", ")
            notes.append("template: \(total) resource(s) of other types skipped: \(types)")
        }
        let ids = resources.keys.sorted()
        // An application load balancer's ARN and DNS name (GetAtt) have ALB's shape.
        for id in ids where resources[id]!.type == Self.loadBalancerType {
            if case .string("application")? = resources[id]!.properties["Type"] {
                names.applications.insert(name(of: id))
            }
        }
        let reported = problems.count
        for id in ids {
            if let given = resources[id]!.properties["Name"],
                case .string(let name)? = resolve(given, "Resources.\(id).Properties.Name")
            {
                resolvedNames[id] = name
            }
        }
        problems.removeSubrange(reported...)  // a Name that cannot be resolved is said once, with its properties
        var document: [String: JSONValue] = [:]
        // A subnet without an address here gets one on loopback: 127.0.0.1, 127.0.0.2, … across every
        // load balancer of the template, so each listens on addresses of its own.
        var nextAddress = 1
        var balancers: [JSONValue] = []
        for id in ids where resources[id]!.type == Self.loadBalancerType {
            var properties = resolvedProperties(id)
            properties["Name"] = .string(name(of: id))
            if properties["SubnetMappings"] == nil {
                var subnets: [JSONValue] = []
                if case .array(let list)? = properties["Subnets"] { subnets = list }
                if subnets.isEmpty { subnets = [.string("subnet-local")] }
                properties["SubnetMappings"] = .array(
                    subnets.map { subnet in
                        defer { nextAddress += 1 }
                        return .object(["SubnetId": subnet, "PrivateIPv4Address": .string("127.0.0.\(nextAddress)")])
                    })
                properties["Subnets"] = nil
            }
            origins.append(("LoadBalancers[\(balancers.count)]", id))
            balancers.append(.object(properties))
        }
        if !balancers.isEmpty { document["LoadBalancers"] = .array(balancers) }
        if let subnets = translatedSubnets(balancers) { document["Subnets"] = subnets }
        if let instances = translatedInstances() { document["Instances"] = instances }
        for (id, properties) in trustStoreRevocations.sorted(by: { $0.id < $1.id }) {
            guard case .object(let reference)? = properties["TrustStoreArn"],
                case .string(let store)? = reference["Ref"],
                trustStoreResources[store] != nil
            else {
                problems.append("Resources.\(id).Properties.TrustStoreArn: a Ref to a TrustStore of this template")
                continue
            }
            guard case .array(let contents)? = properties["RevocationContents"] else {
                problems.append("Resources.\(id).Properties.RevocationContents: missing")
                continue
            }
            var known: [JSONValue] = []
            if case .array(let earlier)? = trustStoreResources[store]?["RevocationContents"] { known = earlier }
            trustStoreResources[store]?["RevocationContents"] = .array(known + contents)
        }
        if !trustStoreResources.isEmpty {
            var stores: [JSONValue] = []
            for id in trustStoreResources.keys.sorted() {
                var properties: [String: JSONValue] = [:]
                for (key, value) in trustStoreResources[id]! {
                    if let resolved = resolve(value, "Resources.\(id).Properties.\(key)") { properties[key] = resolved }
                }
                properties["Name"] = .string(trustStoreName(id))
                origins.append(("TrustStores[\(stores.count)]", id))
                stores.append(.object(properties))
            }
            document["TrustStores"] = .array(stores)
        }
        var groups: [JSONValue] = []
        for id in ids where resources[id]!.type == Self.targetGroupType {
            var properties = resolvedProperties(id)
            properties["Name"] = .string(name(of: id))
            origins.append(("TargetGroups[\(groups.count)]", id))
            groups.append(.object(properties))
        }
        var listeners: [JSONValue] = []
        var listenerIDs: [String] = []
        for id in ids where resources[id]!.type == Self.listenerType {
            origins.append(("Listeners[\(listeners.count)]", id))
            listeners.append(.object(resolvedProperties(id)))
            listenerIDs.append(id)
        }
        // A ListenerCertificate adds its certificates to its listener's list (SNI), after the default.
        for id in listenerCertificates.keys.sorted() {
            let properties = listenerCertificates[id]!
            guard case .object(let reference)? = properties["ListenerArn"],
                case .string(let target)? = reference["Ref"],
                let position = listenerIDs.firstIndex(of: target), case .object(var listener) = listeners[position]
            else {
                problems.append(
                    "Resources.\(id).Properties.ListenerArn: a Ref to a listener of the template is needed")
                continue
            }
            guard
                let certificates = resolve(
                    properties["Certificates"] ?? .array([]), "Resources.\(id).Properties.Certificates"),
                case .array(let added) = certificates
            else { continue }
            var list: [JSONValue] = []
            if case .array(let existing)? = listener["Certificates"] { list = existing }
            listener["Certificates"] = .array(list + added)
            listeners[position] = .object(listener)
        }
        // A ListenerRule joins its listener's Rules (its target groups' Refs resolve to their ARNs).
        for id in listenerRules.keys.sorted() {
            let properties = listenerRules[id]!
            guard case .object(let reference)? = properties["ListenerArn"],
                case .string(let target)? = reference["Ref"],
                let position = listenerIDs.firstIndex(of: target), case .object(var listener) = listeners[position]
            else {
                problems.append("Resources.\(id).Properties.ListenerArn: a Ref to a listener of the template is needed")
                continue
            }
            var rule: [String: JSONValue] = [:]
            for key in ["Priority", "Conditions", "Actions"] {
                if let value = properties[key], let resolved = resolve(value, "Resources.\(id).Properties.\(key)") {
                    rule[key] = resolved
                }
            }
            var list: [JSONValue] = []
            if case .array(let existing)? = listener["Rules"] { list = existing }
            listener["Rules"] = .array(list + [.object(rule)])
            listeners[position] = .object(listener)
        }
        document["TargetGroups"] = .array(groups)
        document["Listeners"] = .array(listeners)
        return problems.isEmpty ? .object(document) : nil
    }

    /// The template's `AWS::EC2::Subnet`s as the file's `Subnets` (`SubnetId` is the logical id, what
    /// a `Ref` to it gives): each node is in its subnet's zone. Their `CidrBlock`s are AWS's address plan,
    /// not this machine's (nodes listen on loopback), so they are left out and said so; targets take
    /// their zone from `AvailabilityZone` (or the one zone there is). Nil, with a note, when a load
    /// balancer names a subnet the template does not make (one from `Vpc.fromLookup`, say).
    private mutating func translatedSubnets(_ balancers: [JSONValue]) -> JSONValue? {
        guard !subnetResources.isEmpty else { return nil }
        var named = Set<String>()
        for case .object(let balancer) in balancers {
            guard case .array(let mappings)? = balancer["SubnetMappings"] else { continue }
            for case .object(let mapping) in mappings {
                if case .string(let id)? = mapping["SubnetId"] { named.insert(id) }
            }
        }
        let foreign = named.subtracting(subnetResources.keys).sorted()
        guard foreign.isEmpty else {
            notes.append(
                "template: \(foreign.joined(separator: ", ")) not made by the template, so its "
                    + "AWS::EC2::Subnet resources are not read and every node is in one zone")
            return nil
        }
        var subnets: [JSONValue] = []
        var withCIDR: [String] = []
        for id in subnetResources.keys.sorted() {
            let path = "Resources.\(id).Properties"
            guard let given = subnetResources[id]?["AvailabilityZone"] else {
                problems.append("\(path).AvailabilityZone: missing (localnlb places a subnet by its zone's name)")
                continue
            }
            guard let zone = resolve(given, path + ".AvailabilityZone") else { continue }
            subnets.append(.object(["SubnetId": .string(id), "AvailabilityZone": zone]))
            if subnetResources[id]?["CidrBlock"] != nil { withCIDR.append(id) }
            origins.append(("Subnets[\(subnets.count - 1)]", id))
        }
        if !withCIDR.isEmpty {
            notes.append(
                "template: the subnets' CidrBlock not used (nodes listen on loopback): a target is in its "
                    + "AvailabilityZone, or in the one zone when there is one")
        }
        return .array(subnets)
    }

    /// The template's `AWS::EC2::Instance`s as the file's `Instances`: the id a `Ref` gives (a stable
    /// `i-…`) and the `PrivateIpAddress` it is reached on. One without an address is named in a note:
    /// a target naming it is then refused, naming the fix.
    private mutating func translatedInstances() -> JSONValue? {
        guard !instanceResources.isEmpty else { return nil }
        var instances: [JSONValue] = []
        var unaddressed: [String] = []
        for id in instanceResources.keys.sorted() {
            let properties = instanceResources[id]!
            guard let given = properties["PrivateIpAddress"] else {
                unaddressed.append(id)
                continue
            }
            let path = "Resources.\(id).Properties"
            guard let address = resolve(given, path + ".PrivateIpAddress") else { continue }
            var instance: [String: JSONValue] = [
                "InstanceId": reference(id) ?? .string(id), "PrivateIpAddress": address,
            ]
            if let zone = properties["AvailabilityZone"], let resolved = resolve(zone, path + ".AvailabilityZone") {
                instance["AvailabilityZone"] = resolved
            }
            origins.append(("Instances[\(instances.count)]", id))
            instances.append(.object(instance))
        }
        if !unaddressed.isEmpty {
            notes.append(
                "template: \(unaddressed.joined(separator: ", ")) give no PrivateIpAddress, the address localnlb "
                    + "reaches an instance target on: give one (127.0.0.x) to register them")
        }
        return instances.isEmpty ? nil : .array(instances)
    }

    /// Each resource's `Name`, resolved once its intrinsics are (`Fn::Join` of parameters, say).
    var resolvedNames: [String: String] = [:]

    /// The name AWS would use: the `Name` property, else the logical id (at most 32 characters).
    package func name(of id: String) -> String {
        if let name = resolvedNames[id] { return name }
        if case .string(let name)? = resources[id]?.properties["Name"] { return name }
        return String(id.prefix(32))
    }

    private mutating func resolvedProperties(_ id: String) -> [String: JSONValue] {
        var resolved: [String: JSONValue] = [:]
        for (key, value) in resources[id]!.properties {
            if let value = resolve(value, "Resources.\(id).Properties.\(key)") { resolved[key] = value }
        }
        return resolved
    }

    /// What `Ref` of `name` gives: a parameter's Default, a pseudo parameter, an ARN of ours, or (for a
    /// resource localnlb skips) its logical id standing in for its physical id.
    private func reference(_ name: String) -> JSONValue? {
        if let value = parameters[name] { return value }
        switch name {
        case "AWS::Region": return .string(names.region)
        case "AWS::AccountId": return .string(names.accountID)
        case "AWS::Partition": return .string("aws")
        case "AWS::URLSuffix": return .string("amazonaws.com")
        case "AWS::StackName": return .string("localnlb")
        default: break
        }
        if let resource = resources[name] {
            switch resource.type {
            case Self.loadBalancerType: return .string(names.loadBalancer(self.name(of: name)))
            case Self.targetGroupType: return .string(names.targetGroup(self.name(of: name)))
            default: return .string(listenerARN(name) ?? name)
            }
        }
        // A trust store's Ref is its ARN.
        if trustStoreResources[name] != nil { return .string(names.trustStore(trustStoreName(name))) }
        // An instance's Ref is its id, as AWS gives it (stable, from the logical id).
        if otherTypes[name] == Self.instanceType { return placeholder(name, "InstanceId") }
        // A certificate's Ref is its ACM ARN: a stable one, which localnlb's authority issues at first use.
        if otherTypes[name] == "AWS::CertificateManager::Certificate" { return .string(certificateARN(name)) }
        return otherResources.contains(name) ? .string(name) : nil
    }

    /// A trust store's name: its `Name`, else the logical id (at most 32 characters).
    func trustStoreName(_ id: String) -> String {
        if case .string(let name)? = trustStoreResources[id]?["Name"] { return name }
        return String(id.prefix(32))
    }

    /// `arn:aws:acm:{region}:{account}:certificate/{a UUID's shape, from the logical id}`.
    func certificateARN(_ id: String) -> String {
        let hex = ResourceNames.id("acm/" + id) + ResourceNames.id("acm+/" + id)
        let digits = Array(hex)
        let uuid = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(digits[$0]) }.joined(separator: "-")
        return "arn:aws:acm:\(names.region):\(names.accountID):certificate/\(uuid)"
    }

    /// The listener's ARN, from its load balancer (its `LoadBalancerArn` `Ref`) and port.
    private func listenerARN(_ id: String) -> String? {
        guard let properties = resources[id]?.properties, case .number(let port)? = properties["Port"] else {
            return nil
        }
        var balancer: String?
        if case .object(let reference)? = properties["LoadBalancerArn"], case .string(let target)? = reference["Ref"] {
            balancer = target
        } else if case .string(let arn)? = properties["LoadBalancerArn"] {
            return ResourceNames.loadBalancerName(in: arn).map { names.listener(loadBalancer: $0, port: UInt16(port)) }
        }
        let lbs = resources.values.filter { $0.type == Self.loadBalancerType }.map(\.id)
        if balancer == nil, lbs.count == 1 { balancer = lbs[0] }
        return balancer.map { names.listener(loadBalancer: name(of: $0), port: UInt16(port)) }
    }

    private func attribute(_ id: String, _ attribute: String) -> JSONValue? {
        guard let resource = resources[id] else { return nil }
        let name = self.name(of: id)
        switch (resource.type, attribute) {
        case (Self.loadBalancerType, "DNSName"): return .string(names.dnsName(name))
        case (Self.loadBalancerType, "LoadBalancerName"): return .string(name)
        case (Self.loadBalancerType, "LoadBalancerArn"): return .string(names.loadBalancer(name))
        case (Self.loadBalancerType, "LoadBalancerFullName"):
            return .string(
                String(names.loadBalancer(name).split(separator: ":").last!.dropFirst("loadbalancer/".count)))
        case (Self.loadBalancerType, "CanonicalHostedZoneID"): return names.canonicalHostedZoneID.map { .string($0) }
        case (Self.targetGroupType, "TargetGroupArn"): return .string(names.targetGroup(name))
        case (Self.targetGroupType, "TargetGroupName"): return .string(name)
        case (Self.targetGroupType, "TargetGroupFullName"):
            return .string(String(names.targetGroup(name).split(separator: ":").last!))
        case (Self.listenerType, "ListenerArn"): return listenerARN(id).map { .string($0) }
        default: return nil
        }
    }

    /// `Fn::GetAtt` of a resource localnlb skips (a security group, a VPC, a certificate, a log
    /// bucket): a stable placeholder in the attribute's shape, the same for the same logical id on
    /// every load, never a refusal. An id attribute reads like AWS's (`sg-…` of 17 hex digits from
    /// the logical id), an ARN like an ARN; anything else is `LogicalId.Attribute`.
    private func placeholder(_ id: String, _ attribute: String) -> JSONValue? {
        guard let type = otherTypes[id] else { return nil }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in (id + "." + attribute).utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        let digits = String(String(hash, radix: 16).reversed()).padding(toLength: 17, withPad: "0", startingAt: 0)
        let prefixes = [
            "AWS::EC2::SecurityGroup": "sg-", "AWS::EC2::VPC": "vpc-", "AWS::EC2::Subnet": "subnet-",
            "AWS::EC2::Instance": "i-",
        ]
        if attribute.hasSuffix("Id") || attribute == "GroupId", let prefix = prefixes[type] {
            return .string(prefix + digits)
        }
        if attribute == "Arn" || attribute.hasSuffix("Arn") {
            // The service of the type (AWS::S3::Bucket: s3), ACM's as its ARNs spell it.
            let named = type.split(separator: ":").dropFirst().first.map { $0.lowercased() } ?? "resource"
            let service = named == "certificatemanager" ? "acm" : named
            return .string("arn:aws:\(service):\(names.region):\(names.accountID):\(id)")
        }
        return .string("\(id).\(attribute)")
    }

    /// `value` with its intrinsic functions resolved; nil (with a problem naming `path`) when one cannot be.
    private mutating func resolve(_ value: JSONValue, _ path: String) -> JSONValue? {
        switch value {
        case .array(let items):
            var resolved: [JSONValue] = []
            for (index, item) in items.enumerated() {
                guard let item = resolve(item, "\(path)[\(index)]") else { return nil }
                if item != .null { resolved.append(item) }  // AWS::NoValue drops the item
            }
            return .array(resolved)
        case .object(let object)
        where object.count == 1 && (object.keys.first!.hasPrefix("Fn::") || object["Ref"] != nil):
            let (function, argument) = object.first!
            return intrinsic(function, argument, "\(path).\(function)")
        case .object(let object):
            var resolved: [String: JSONValue] = [:]
            for (key, item) in object {
                guard let item = resolve(item, "\(path).\(key)") else { return nil }
                if item != .null { resolved[key] = item }
            }
            return .object(resolved)
        default:
            return value
        }
    }

    private mutating func intrinsic(_ function: String, _ argument: JSONValue, _ path: String) -> JSONValue? {
        func fail(_ message: String) -> JSONValue? {
            problems.append("\(path): \(message)")
            return nil
        }
        switch (function, argument) {
        case ("Ref", .string("AWS::NoValue")):
            return .null
        case ("Ref", .string(let name)):
            return reference(name) ?? fail("Ref \(name): no parameter, pseudo parameter or resource of that logical id")
        case ("Fn::GetAtt", .array(let parts)) where parts.count == 2:
            guard case .string(let id) = parts[0], case .string(let name) = parts[1] else {
                return fail("takes [logical id, attribute]")
            }
            return attribute(id, name) ?? placeholder(id, name)
                ?? fail("\(id).\(name): not an attribute localnlb can give")
        case ("Fn::GetAtt", .string(let dotted)):
            let parts = dotted.split(separator: ".", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { return fail("\(dotted) is not logical-id.attribute") }
            return attribute(parts[0], parts[1]) ?? placeholder(parts[0], parts[1])
                ?? fail("\(dotted): not an attribute localnlb can give")
        case ("Fn::Join", .array(let parts)) where parts.count == 2:
            guard case .string(let separator) = parts[0], let list = resolve(parts[1], path + "[1]"),
                case .array(let items) = list
            else { return fail("takes [separator, [values]]") }
            var texts: [String] = []
            for item in items {
                guard let text = item.attributeString else { return fail("joins strings and numbers only") }
                texts.append(text)
            }
            return .string(texts.joined(separator: separator))
        case ("Fn::Sub", .string(let text)):
            return substitute(text, [:], path)
        case ("Fn::Sub", .array(let parts)) where parts.count == 2:
            guard case .string(let text) = parts[0], let variables = resolve(parts[1], path + "[1]"),
                case .object(let map) = variables
            else { return fail("takes a string, or [string, {variables}]") }
            return substitute(text, map, path)
        case ("Fn::Select", .array(let parts)) where parts.count == 2:
            guard let index = resolve(parts[0], path + "[0]")?.attributeString.flatMap({ Int($0) }),
                let list = resolve(parts[1], path + "[1]"), case .array(let items) = list
            else { return fail("takes [index, [values]]") }
            guard items.indices.contains(index) else {
                return fail("index \(index) is outside the \(items.count) values")
            }
            return items[index]
        case ("Fn::Split", .array(let parts)) where parts.count == 2:
            guard case .string(let separator) = parts[0], !separator.isEmpty,
                let text = resolve(parts[1], path + "[1]")?.attributeString
            else { return fail("takes [separator, string]") }
            return .array(text.components(separatedBy: separator).map { .string($0) })
        case ("Fn::GetAZs", _):
            // The region's zones as localnlb names them: a subnet's `Fn::Select` picks one.
            return .array(["a", "b", "c"].map { .string(names.region + $0) })
        default:
            return fail(
                "\(function) cannot be resolved here (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split and "
                    + "Fn::GetAZs can)")
        }
    }

    private mutating func substitute(_ text: String, _ variables: [String: JSONValue], _ path: String) -> JSONValue? {
        var out = ""
        var rest = Substring(text)
        while let open = rest.range(of: "${") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                problems.append("\(path): an unclosed ${ in \"\(text)\"")
                return nil
            }
            let name = String(rest[open.upperBound..<close])
            rest = rest[rest.index(after: close)...]
            if name.hasPrefix("!") {
                out += "${" + name.dropFirst() + "}"
                continue
            }
            let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
            let value = variables[name] ?? (parts.count == 2 ? attribute(parts[0], parts[1]) : reference(name))
            guard let text = value?.attributeString else {
                problems.append("\(path): ${\(name)} names no parameter, resource or attribute localnlb can give")
                return nil
            }
            out += text
        }
        return .string(out + rest)
    }

    /// A problem of the translated configuration, with its path given back in the template's terms.
    func inTemplateTerms(_ problem: String) -> String {
        for (path, resource) in origins {
            for separator in [".", ":", "["] where problem.hasPrefix(path + separator) {
                let rest = problem.dropFirst(path.count)
                return "Resources.\(resource).Properties" + rest
            }
        }
        return problem
    }
}
