import ProxyProtocol

/// The parts of the change function that make load balancers and set tags.
extension Configuration {
    /// CreateLoadBalancer: a network load balancer with a node per subnet, appended; or the index of
    /// the one of that name when the call gives the same subnets again (AWS's call is idempotent). A
    /// node's address is the SubnetMapping's `PrivateIPv4Address`, else (with `Subnets`) the lowest free
    /// one of its subnet's CIDR block, else the lowest 127.0.0.x no other node has: each load balancer
    /// listens on addresses of its own, as on AWS (docs/api.md §12).
    mutating func createLoadBalancer(_ request: LoadBalancerRequest) throws(APIError) -> Int? {
        guard let shown = request.name else { throw .validation("Name is required") }
        // AWS's default Type is application.
        let type: LoadBalancerType
        switch request.type {
        case nil, "application": type = .application
        case "network": type = .network
        case let other?:
            throw .validation(
                "Type '\(other)': localnlb makes network and application load balancers (a gateway load balancer "
                    + "is not emulated)")
        }
        if let problem = ConfigReader.loadBalancerNameProblem(shown) { throw .validation("Name \(problem)") }
        let name = names.qualified(shown, region: request.region)
        if let key = request.unsupported.first {
            throw .validation("\(key) is not a parameter localnlb emulates for \(type.rawValue) load balancers")
        }
        var mappings = request.subnetMappings
        if !request.subnets.isEmpty && !mappings.isEmpty {
            throw .validation("Subnets and SubnetMappings cannot be specified at the same time")
        }
        if mappings.isEmpty { mappings = request.subnets.map { ["SubnetId": $0] } }
        guard !mappings.isEmpty else {
            throw .validation("At least one subnet must be specified (Subnets or SubnetMappings)")
        }
        let subnetIDs = mappings.map { $0["SubnetId"] ?? "" }
        if let duplicate = subnetIDs.first(where: { id in subnetIDs.filter { $0 == id }.count > 1 }) {
            throw .validation("Subnet '\(duplicate)' is given twice")
        }
        if let existing = loadBalancerIndex(name) {
            guard loadBalancers[existing].nodes.map(\.subnetID) == subnetIDs else {
                throw APIError(
                    code: "DuplicateLoadBalancerName", message: "A load balancer with the same name '\(name)' exists")
            }
            return existing
        }
        let nodes = try nodeMappings(mappings)
        var object: [String: JSONValue] = ["Name": .string(name), "Type": .string(type.rawValue)]
        object["SubnetMappings"] = .array(nodes)
        if let scheme = request.scheme { object["Scheme"] = .string(scheme) }
        if let type = request.ipAddressType { object["IpAddressType"] = .string(type) }
        if !request.securityGroups.isEmpty {
            object["SecurityGroups"] = .array(request.securityGroups.map { .string($0) })
        }
        if !request.tags.isEmpty { object["Tags"] = .array(request.tags.map { .object($0.mapValues { .string($0) }) }) }
        var reader = newReader()
        reader.allowsRegionSuffix = true  // the name is checked above; here it is the model's
        let read = reader.loadBalancer(.object(object), "CreateLoadBalancer")
        loadBalancers.append(try Self.validated(reader, read))
        return nil
    }

    /// The SubnetMappings of new nodes, each with an address: the mapping's own, else (with `Subnets`)
    /// the lowest free one of its subnet's CIDR block, else the lowest 127.0.0.x no node has. `keeping`:
    /// the nodes (of the load balancer being changed) whose subnet is given again stay as they are.
    func nodeMappings(_ mappings: [[String: String]], keeping: [LoadBalancerNode] = []) throws(APIError)
        -> [JSONValue]
    {
        if !subnets.isEmpty {
            var zones: [String: String] = [:]
            for id in mappings.compactMap({ $0["SubnetId"] }) {
                guard let zone = subnets.first(where: { $0.subnetID == id })?.availabilityZone else { continue }
                if let other = zones[zone] {
                    throw APIError(
                        code: "InvalidConfigurationRequest",
                        message: "\(other) and \(id) are both in \(zone): a load balancer has one subnet per "
                            + "Availability Zone")
                }
                zones[zone] = id
            }
        }
        var taken = Set((loadBalancers.flatMap(\.nodes) + keeping).flatMap(\.addresses))
        for mapping in mappings {
            if let text = mapping["PrivateIPv4Address"], let address = IPAddress(text) { taken.insert(address) }
        }
        var nodes: [JSONValue] = []
        var next: UInt8 = 1
        for mapping in mappings {
            if mapping.count == 1, let kept = keeping.first(where: { $0.subnetID == mapping["SubnetId"] }) {
                var node: [String: JSONValue] = ["SubnetId": .string(kept.subnetID)]
                if let ipv4 = kept.ipv4 { node["PrivateIPv4Address"] = .string(ipv4.description) }
                if let ipv6 = kept.ipv6 { node["IPv6Address"] = .string(ipv6.description) }
                nodes.append(.object(node))
                continue
            }
            var node = mapping.mapValues { JSONValue.string($0) }
            let given = mapping["PrivateIPv4Address"] != nil || mapping["IPv6Address"] != nil
            if !subnets.isEmpty {
                // With Subnets, a node is in one of them, on an address of its CIDR block.
                let id = mapping["SubnetId"] ?? ""
                guard let subnet = subnets.first(where: { $0.subnetID == id }) else {
                    throw APIError(
                        code: "SubnetNotFound",
                        message: "The specified subnet does not exist: '\(id)' is not in Subnets ("
                            + subnets.map(\.subnetID).joined(separator: ", ") + ")")
                }
                if let text = mapping["PrivateIPv4Address"], let address = IPAddress(text), !subnet.contains(address) {
                    throw .validation("\(text) is not in \(id)'s CIDR block")
                }
                if !given {
                    guard let address = subnet.freeAddress(taken: taken) else {
                        throw APIError(
                            code: "InvalidSubnet",
                            message: "\(id) has no IPv4 CIDR block with an address left for a node")
                    }
                    node["PrivateIPv4Address"] = .string(address.description)
                    taken.insert(address)
                }
            } else if !given {
                while next < 255 && taken.contains(.v4(IPv4Address(127, 0, 0, next))) { next += 1 }
                guard next < 255 else {
                    throw APIError(
                        code: "TooManyLoadBalancers",
                        message: "every address 127.0.0.1-127.0.0.254 is a node's already; give SubnetMappings "
                            + "with a PrivateIPv4Address")
                }
                node["PrivateIPv4Address"] = .string("127.0.0.\(next)")
                taken.insert(.v4(IPv4Address(127, 0, 0, next)))
            }
            nodes.append(.object(node))
        }
        return nodes
    }

    // MARK: Tags

    func tags(of resource: TaggedResource) throws(APIError) -> [(key: String, value: String)] {
        switch resource {
        case .loadBalancer(let name):
            guard let index = loadBalancerIndex(name) else { throw notFound(loadBalancer: name) }
            return loadBalancers[index].tags
        case .targetGroup(let name): return targetGroups[try targetGroupIndex(name)].tags
        case .listener(let balancer, let port): return listeners[try listenerIndex(balancer, port)].tags
        }
    }

    mutating func setTags(_ tags: [(key: String, value: String)], of resource: TaggedResource) throws(APIError) {
        switch resource {
        case .loadBalancer(let name):
            guard let index = loadBalancerIndex(name) else { throw notFound(loadBalancer: name) }
            loadBalancers[index].tags = tags
        case .targetGroup(let name): targetGroups[try targetGroupIndex(name)].tags = tags
        case .listener(let balancer, let port): listeners[try listenerIndex(balancer, port)].tags = tags
        }
    }

    /// AddTags: keys of 1–128 characters, values of at most 256, at most 50 tags a resource; every
    /// resource is checked before any changes.
    mutating func addTags(_ given: [[String: String]], to resources: [TaggedResource]) throws(APIError) {
        guard !resources.isEmpty else { throw .validation("ResourceArns is required") }
        guard !given.isEmpty else { throw .validation("Tags is required") }
        var keys = Set<String>()
        for tag in given {
            guard let key = tag["Key"], (1...128).contains(key.count), (tag["Value"] ?? "").count <= 256 else {
                throw .validation("a tag key has 1-128 characters and a value at most 256")
            }
            guard keys.insert(key).inserted else {
                throw APIError(code: "DuplicateTagKeys", message: "Tag key '\(key)' is given more than once")
            }
        }
        var updates: [[(key: String, value: String)]] = []
        for resource in resources {
            var tags = try tags(of: resource)
            for tag in given {
                let key = tag["Key"]!
                if let position = tags.firstIndex(where: { $0.key == key }) {
                    tags[position].value = tag["Value"] ?? ""
                } else {
                    tags.append((key, tag["Value"] ?? ""))
                }
            }
            guard tags.count <= 50 else {
                throw APIError(code: "TooManyTags", message: "A resource can have at most 50 tags")
            }
            updates.append(tags)
        }
        for (resource, tags) in zip(resources, updates) { try setTags(tags, of: resource) }
    }
}

extension SubnetConfiguration {
    /// The lowest address of the subnet's CIDR block (past its network address) that no node has, for
    /// a load balancer made with `Subnets`.
    func freeAddress(taken: Set<IPAddress>) -> IPAddress? {
        guard let cidr, case .v4(let network) = cidr.address, cidr.prefixLength <= 30 else { return nil }
        let base = network.value & (cidr.prefixLength == 0 ? 0 : ~UInt32(0) << (32 - cidr.prefixLength))
        let size = UInt32(1) << (32 - cidr.prefixLength)
        for offset in 1..<min(size - 1, 4096) {
            let value = base + offset
            let address = IPAddress.v4(
                IPv4Address(
                    UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)))
            if !taken.contains(address) { return address }
        }
        return nil
    }
}
