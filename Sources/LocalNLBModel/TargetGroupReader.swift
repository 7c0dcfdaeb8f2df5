import ProxyProtocol

/// The `TargetGroups` entries of a configuration: properties, targets, health check and attributes.
extension ConfigReader {
    package mutating func targetGroup(_ value: JSONValue, _ path: String) -> TargetGroupConfiguration? {
        let keys = [
            "Name", "Protocol", "Port", "TargetType", "VpcId", "IpAddressType", "Targets", "TargetGroupAttributes",
            "HealthCheckEnabled", "HealthCheckProtocol", "HealthCheckPort", "HealthCheckPath",
            "HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds", "HealthyThresholdCount",
            "UnhealthyThresholdCount", "Matcher", "Tags",
        ]
        guard let object = readObject(value, path, keys: keys) else { return nil }
        let errorsBefore = errors.count
        let name = object["Name"].flatMap { string($0, path + ".Name") }
        if object["Name"] == nil { error(path + ".Name", "missing") }
        // AWS: at most 32 alphanumeric characters or hyphens, not beginning or ending with a hyphen.
        let checked = name.map { regionSuffixChecked($0, path + ".Name") }
        if let name = checked, name.count > 32 {
            error(path + ".Name", "Target group name '\(name)' cannot be longer than '32' characters")
        } else if let name = checked,
            name.isEmpty || name.hasPrefix("-") || name.hasSuffix("-")
                || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
        {
            error(
                path + ".Name",
                "\"\(name)\" must be 1-32 letters, digits and hyphens, not beginning or ending with a hyphen, as in AWS"
            )
        }
        let transport = object["Protocol"].flatMap { transportProtocol($0, path + ".Protocol") } ?? .tcp
        let port = object["Port"].flatMap { readPort($0, path + ".Port") }
        if object["Port"] == nil { error(path + ".Port", "missing") }
        var targetType = TargetType.instance
        if let value = object["TargetType"] {
            if let text = value.attributeString, ["lambda", "alb"].contains(text) {
                error(
                    path + ".TargetType", "\"\(text)\" target groups are not supported by localnlb; use instance or ip")
            } else {
                targetType =
                    choice(value, path + ".TargetType", TargetType.self, names: ["instance", "ip"]) ?? .instance
            }
        }
        let vpcID = object["VpcId"].flatMap { string($0, "\(path).VpcId") }
        let ipAddressType = object["IpAddressType"].flatMap {
            choice($0, path + ".IpAddressType", TargetIPAddressType.self, names: ["ipv4", "ipv6"])?.rawValue
        }
        let tags = object["Tags"].map { self.tags($0, path + ".Tags") } ?? []

        var group = TargetGroupConfiguration(name: name ?? "", port: port ?? 1, targetType: targetType, targets: [])
        group.setProtocol(transport)
        group.vpcID = vpcID
        group.ipAddressType = ipAddressType
        var base = transport.isHTTP ? HealthCheckSettings.application : HealthCheckSettings()
        if transport == .https { base.protocolName = .https }  // ALB checks an HTTPS group over HTTPS
        group.healthCheck = healthCheck(object, path, base: base)
        group.tags = tags
        // UDP: the client's address is always kept (docs/flows.md §10), whatever the target type.
        if transport.carriesUDP { group.preserveClientIP = true }
        if let value = object["TargetGroupAttributes"] {
            attributes(value, path + ".TargetGroupAttributes", into: &group)
        }
        if transport.carriesUDP {
            let attributesPath = path + ".TargetGroupAttributes"
            if !group.preserveClientIP {
                error(
                    attributesPath + "[\"preserve_client_ip.enabled\"]",
                    "false: a \(transport.rawValue) target group always preserves the client's address (AWS allows no other)"
                )
            }
            if group.proxyProtocolV2Enabled || group.proxyProtocolV1Enabled {
                error(
                    attributesPath,
                    "a \(transport.rawValue) target group sends no PROXY protocol header (AWS does not support it on UDP)"
                )
            }
        }
        if let value = object["Targets"], let items = array(value, path + ".Targets") {
            var registered = Set<IPEndpoint>()
            for (index, item) in items.enumerated() {
                if let target = target(item, "\(path).Targets[\(index)]", group: group) {
                    if !registered.insert(target.endpoint).inserted {
                        error("\(path).Targets[\(index)]", "\(target.endpoint) is registered twice")
                    }
                    group.targets.append(target)
                }
            }
        }
        return errors.count == errorsBefore ? group : nil
    }

    package enum TargetIPAddressType: String { case ipv4, ipv6 }

    /// `Instances`: `[{InstanceId, PrivateIpAddress, AvailabilityZone}]`, the instances targets may name.
    package mutating func instances(_ value: JSONValue) -> [InstanceConfiguration] {
        guard let items = array(value, "Instances") else { return [] }
        var result: [InstanceConfiguration] = []
        for (index, item) in items.enumerated() {
            if let instance = instance(item, "Instances[\(index)]") {
                if result.contains(where: { $0.instanceID == instance.instanceID }) {
                    error("Instances[\(index)].InstanceId", "\"\(instance.instanceID)\" is given twice")
                }
                result.append(instance)
            }
        }
        return result
    }

    package mutating func instance(_ value: JSONValue, _ path: String) -> InstanceConfiguration? {
        guard
            let object = readObject(value, path, keys: ["InstanceId", "PrivateIpAddress", "AvailabilityZone"])
        else { return nil }
        guard let given = object["InstanceId"], let id = string(given, path + ".InstanceId") else {
            if object["InstanceId"] == nil { error(path + ".InstanceId", "missing (i-0123456789abcdef0)") }
            return nil
        }
        guard InstanceConfiguration.isInstanceID(id) else {
            error(path + ".InstanceId", "\"\(id)\" is not an instance id (i- and 8 or 17 hex digits)")
            return nil
        }
        guard let addressValue = object["PrivateIpAddress"] else {
            error(path + ".PrivateIpAddress", "missing: the address instance \(id) is reached on")
            return nil
        }
        let zone = object["AvailabilityZone"].flatMap { string($0, path + ".AvailabilityZone") }
        guard let address = readAddress(addressValue, path + ".PrivateIpAddress") else { return nil }
        return InstanceConfiguration(instanceID: id, privateIPAddress: address, availabilityZone: zone)
    }

    package mutating func target(_ value: JSONValue, _ path: String, group: TargetGroupConfiguration)
        -> TargetConfiguration?
    {
        guard let object = readObject(value, path, keys: ["Id", "Port", "AvailabilityZone", "PrivateIpAddress"]) else {
            return nil
        }
        var zone = object["AvailabilityZone"].flatMap { string($0, path + ".AvailabilityZone") }
        let port = object["Port"].map { readPort($0, path + ".Port") } ?? group.port
        guard let idValue = object["Id"] else {
            error(path + ".Id", "missing")
            return nil
        }
        guard let id = string(idValue, path + ".Id") else { return nil }
        var address: IPAddress?
        if id.hasPrefix("i-") {
            if group.targetType != .instance {
                error(path + ".Id", "\"\(id)\" is an instance id, but the target group's TargetType is ip")
            } else if !InstanceConfiguration.isInstanceID(id) {
                error(path + ".Id", "\"\(id)\" is not an instance id (i- and 8 or 17 hex digits)")
            } else if let value = object["PrivateIpAddress"] {
                address = self.readAddress(value, path + ".PrivateIpAddress")
            } else if let instance = instances.first(where: { $0.instanceID == id }) {
                address = instance.privateIPAddress
                zone = zone ?? instance.availabilityZone
            } else {
                error(
                    path + ".Id",
                    "instance \(id) is not known: declare it in Instances (InstanceId, PrivateIpAddress), with "
                        + "PUT /instances/\(id), or give the target a PrivateIpAddress")
            }
        } else {
            if object["PrivateIpAddress"] != nil {
                error(path + ".PrivateIpAddress", "only for a target whose Id is an instance id (i-…)")
            }
            address = self.readAddress(idValue, path + ".Id")
        }
        guard let address, let port else { return nil }
        return TargetConfiguration(id: id, address: address, port: port, availabilityZone: zone)
    }

    /// The health-check properties of `object` over `base` (the defaults for a new group; the group's
    /// settings for ModifyTargetGroup).
    package mutating func healthCheck(
        _ object: [String: JSONValue], _ path: String, base: HealthCheckSettings = HealthCheckSettings()
    ) -> HealthCheckSettings {
        var settings = base
        if let value = object["HealthCheckEnabled"], let enabled = boolean(value, path + ".HealthCheckEnabled") {
            settings.enabled = enabled
            if !enabled {
                warn(path + ".HealthCheckEnabled", "false is refused by AWS for Network Load Balancer target groups")
            }
        }
        if let value = object["HealthCheckProtocol"] {
            if value.attributeString == "UDP" {
                error(
                    path + ".HealthCheckProtocol",
                    "\"UDP\": health checks use TCP, HTTP or HTTPS, never UDP (a UDP group is checked over TCP)")
            } else if let proto = choice(
                value, path + ".HealthCheckProtocol", HealthCheckProtocol.self, names: ["TCP", "HTTP", "HTTPS"])
            {
                settings.protocolName = proto
                // docs/health.md §3: the default timeout is 6 s for HTTP checks, 10 s for TCP and HTTPS (an
                // application load balancer's group: 5 s whatever the protocol).
                if proto == .http && !base.application { settings.timeoutSeconds = 6 }
            }
        }
        if let value = object["HealthCheckPort"] {
            if value.attributeString != "traffic-port" {
                if case .string(let s) = value, Int(s) == nil {
                    error(path + ".HealthCheckPort", "\(value.shown) is not traffic-port or a port (1-65535)")
                } else {
                    settings.port = readPort(value, path + ".HealthCheckPort")
                }
            }
        }
        if let value = object["HealthCheckPath"], let text = string(value, path + ".HealthCheckPath") {
            if !text.hasPrefix("/") {
                error(path + ".HealthCheckPath", "\"\(text)\" must start with /")
            } else if !settings.protocolName.isHTTP {
                warn(path + ".HealthCheckPath", "applies to HTTP and HTTPS health checks only; AWS rejects it with TCP")
            }
            settings.path = text
        }
        let numbers: [(String, WritableKeyPath<HealthCheckSettings, Int>, ClosedRange<Int>)] = [
            ("HealthCheckIntervalSeconds", \.intervalSeconds, 5...300),
            ("HealthCheckTimeoutSeconds", \.timeoutSeconds, 2...120),
            ("HealthyThresholdCount", \.healthyThreshold, 2...10),
            ("UnhealthyThresholdCount", \.unhealthyThreshold, 2...10),
        ]
        for (key, keyPath, aws) in numbers {
            if let value = object[key], let number = integer(value, "\(path).\(key)", valid: 1...86400, aws: aws) {
                settings[keyPath: keyPath] = number
            }
        }
        // docs/api.md §11: a timeout given longer than the interval is refused (AWS checks the two
        // together; a timeout left at its default is not held against a short interval).
        if object["HealthCheckTimeoutSeconds"] != nil, settings.timeoutSeconds > settings.intervalSeconds {
            warn(
                path + ".HealthCheckTimeoutSeconds",
                "\(settings.timeoutSeconds) is longer than HealthCheckIntervalSeconds \(settings.intervalSeconds); "
                    + "AWS requires the timeout to be no longer than the interval")
        }
        if let value = object["Matcher"],
            let matcher = self.readObject(value, path + ".Matcher", keys: ["HttpCode", "GrpcCode"])
        {
            if matcher["GrpcCode"] != nil {
                error(path + ".Matcher.GrpcCode", "Network Load Balancer health checks have no gRPC matcher")
            }
            if let value = matcher["HttpCode"], let text = string(value, path + ".Matcher.HttpCode") {
                if let ranges = parseMatcher(text) {
                    settings.matcher = ranges
                } else {
                    error(path + ".Matcher.HttpCode", "\"\(text)\" is not codes 200-599 as 200, 200,202 or 200-399")
                }
            }
        }
        return settings
    }

    func parseMatcher(_ text: String) -> [ClosedRange<Int>]? {
        var ranges: [ClosedRange<Int>] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
            guard (1...2).contains(bounds.count), bounds.allSatisfy({ $0.map { (200...599).contains($0) } ?? false })
            else { return nil }
            let low = bounds[0]!
            let high = bounds.last!!
            guard low <= high else { return nil }
            ranges.append(low...high)
        }
        return ranges
    }

    /// `TargetGroupAttributes` (or ModifyTargetGroupAttributes' changes) onto `group`, each checked by
    /// its row of the attribute table; then the rules between attributes, on the result.
    package mutating func attributes(_ value: JSONValue, _ path: String, into group: inout TargetGroupConfiguration) {
        let index = TargetGroupConfiguration.index(group.protocolName)
        let kind = group.protocolName.isHTTP ? "an application" : "a network"
        for (key, attribute) in attributeList(value, path) {
            let at = "\(path)[\"\(key)\"]"
            if group.protocolName.isHTTP, index[key] == nil, TargetGroupConfiguration.attributeIndex[key] != nil {
                error(
                    at,
                    "is a network load balancer's target group attribute; an \(group.protocolName.rawValue) target "
                        + "group gets the client's address in X-Forwarded-For and has no PROXY protocol")
                continue
            }
            guard let row = index[key] else {
                error(
                    at,
                    (key.hasPrefix("localnlb.")
                        ? "not a localnlb target group attribute"
                        : "not \(kind) load balancer's target group attribute")
                        + Self.didYouMean(key, among: index.keys))
                continue
            }
            guard let checked = row.check(&self, attribute, at) else { continue }
            row.set(&group, checked)
            // At most one entry per key (the table's size): a modification replaces the value given before.
            if let position = group.attributes.firstIndex(where: { $0.key == key }) {
                group.attributes[position].value = checked
            } else {
                group.attributes.append((key, checked))
            }
        }
        func at(_ field: PartialKeyPath<TargetGroupConfiguration>) -> String {
            "\(path)[\"\(index.key(of: field))\"]"
        }
        if group.protocolName.isHTTP && group.stickinessEnabled && group.stickinessType == "app_cookie"
            && group.appCookieName.isEmpty
        {
            error(
                "\(path)[\"stickiness.app_cookie.cookie_name\"]",
                "missing: app_cookie stickiness follows the application's cookie of this name")
        }
        if group.protocolName.isHTTP && group.slowStartSeconds > 0 {
            // docs/alb.md §23: AWS's range is 30-900 seconds, 0 for off; round robin only.
            if group.slowStartSeconds < 30 {
                error(
                    at(\.slowStartSeconds),
                    "\(group.slowStartSeconds) is not 0 (off) or a number of seconds from 30 to 900")
            } else if group.applicationAlgorithm != "round_robin" {
                error(
                    at(\.slowStartSeconds),
                    "\(group.slowStartSeconds): slow start mode cannot be enabled with the "
                        + "\(group.applicationAlgorithm) routing algorithm (round_robin only); set it to 0 or "
                        + "\(index.key(of: \.applicationAlgorithm)) to round_robin")
            }
        }
        if group.unhealthyDrainingIntervalSeconds > 0 && group.unhealthyConnectionTermination {
            warn(
                at(\.unhealthyDrainingIntervalSeconds),
                "applies only when \(index.key(of: \.unhealthyConnectionTermination)) is false")
        }
        if group.proxyProtocolV1Enabled && group.proxyProtocolV2Enabled {
            error(
                at(\.proxyProtocolV1Enabled),
                "true together with \(index.key(of: \.proxyProtocolV2Enabled)): a target group sends one PROXY "
                    + "header; turn one off")
        }
        if group.vpcEndpointID != nil && (!group.proxyProtocolV2Enabled || !group.proxyProtocolV2AWSTLVs) {
            warn(
                at(\.vpcEndpointID),
                "has no effect unless \(index.key(of: \.proxyProtocolV2Enabled)) is true and "
                    + "\(index.key(of: \.proxyProtocolV2AWSTLVs)) is aws")
        }
    }

    /// `ListenerAttributes` or `LoadBalancerAttributes` onto `model`, each checked by its row.
    package mutating func attributes<Model>(
        _ value: JSONValue, _ path: String, index: AttributeIndex<Model>, into model: inout Model, kind: String
    ) {
        for (key, attribute) in attributeList(value, path) {
            let at = "\(path)[\"\(key)\"]"
            guard let row = index[key] else {
                error(
                    at,
                    "not a \(kind) attribute\(Self.didYouMean(key, among: index.keys)) "
                        + "(\(index.keys.joined(separator: ", ")))")
                continue
            }
            if let checked = row.check(&self, attribute, at) { row.set(&model, checked) }
        }
    }

    /// `; did you mean "…"?` naming the known key nearest to a mistyped one (a few letters off), or "".
    static func didYouMean(_ key: String, among keys: [String]) -> String {
        let typed = Array(key.lowercased())
        var best: (key: String, distance: Int)?
        for known in keys {
            let distance = editDistance(typed, Array(known))
            if distance < best?.distance ?? .max { best = (known, distance) }
        }
        guard let best, best.distance > 0, best.distance <= max(2, typed.count / 4) else { return "" }
        return "; did you mean \"\(best.key)\"?"
    }

    /// Levenshtein distance: insertions, deletions and substitutions.
    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
