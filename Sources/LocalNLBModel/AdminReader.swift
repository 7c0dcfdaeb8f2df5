import ProxyProtocol

/// The `Admin` section of a configuration.
extension ConfigReader {
    /// `Admin`: the control API. On by default at 127.0.0.1:8404; an address other than loopback
    /// needs a token, since anyone who reaches it can deregister every target.
    package mutating func admin(_ value: JSONValue) -> AdminConfiguration? {
        guard
            let object = readObject(
                value, "Admin",
                keys: [
                    "Enabled", "Address", "Token", "Region", "AccountId", "AccessKeyId", "SecretAccessKey", "HostNames",
                    "PublicMetrics", "AccountLimits",
                ])
        else { return nil }
        if let value = object["Enabled"], boolean(value, "Admin.Enabled") == false { return nil }
        var admin = AdminConfiguration()
        if let value = object["Address"], let text = string(value, "Admin.Address") {
            if let endpoint = IPEndpoint(text) {
                admin.address = endpoint
            } else {
                error("Admin.Address", "\"\(text)\" is not ADDRESS:PORT (IPv6 as [::1]:8404)")
            }
        }
        if let value = object["Region"], let region = string(value, "Admin.Region") {
            let parts = region.split(separator: "-")
            if parts.count >= 3, parts.allSatisfy({ !$0.isEmpty }), parts.last!.allSatisfy(\.isNumber),
                region.allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "-" })
            {
                admin.region = region
            } else {
                error("Admin.Region", "\"\(region)\" is not a region such as us-east-1")
            }
        }
        if let value = object["AccountId"], let account = string(value, "Admin.AccountId") {
            if account.count == 12 && account.allSatisfy({ $0.isASCII && $0.isNumber }) {
                admin.accountID = account
            } else {
                error("Admin.AccountId", "\"\(account)\" is not a 12-digit AWS account id")
            }
        }
        if let value = object["AccessKeyId"], let key = string(value, "Admin.AccessKeyId") {
            if (16...128).contains(key.count) && key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) {
                admin.accessKeyID = key
            } else {
                error("Admin.AccessKeyId", "\"\(key)\" is not an access key id (16-128 letters and digits)")
            }
        }
        if let value = object["SecretAccessKey"], let secret = string(value, "Admin.SecretAccessKey") {
            if secret == AdminConfiguration.redacted {
                error("Admin.SecretAccessKey", Self.redactedProblem)
            } else if secret.count >= 16 {
                admin.secretAccessKey = secret
            } else {
                error("Admin.SecretAccessKey", "is shorter than 16 characters")
            }
        }
        if (object["AccessKeyId"] == nil) != (object["SecretAccessKey"] == nil) {
            error("Admin", "AccessKeyId and SecretAccessKey go together: give both, or neither")
        }
        if let value = object["Token"], let token = string(value, "Admin.Token") {
            if token == AdminConfiguration.redacted {
                error("Admin.Token", Self.redactedProblem)
            } else if token.count < 16 {
                error("Admin.Token", "is shorter than 16 characters; use a long random string")
            } else {
                admin.token = token
            }
        }
        if let value = object["AccountLimits"], case .object(let limits) = value {
            // A quota increase, as AWS grants one: a limit's name and its new maximum.
            let names = AccountLimits.all.map(\.name) + [AccountLimits.targetsPerTargetGroup.name]
            for (name, given) in limits.sorted(by: { $0.key < $1.key }) {
                let path = "Admin.AccountLimits.\(name)"
                guard names.contains(name) else {
                    error(path, "not a limit DescribeAccountLimits names\(Self.didYouMean(name, among: names))")
                    continue
                }
                if let max = integer(given, path, valid: 1...1_000_000) { admin.accountLimits[name] = max }
            }
        } else if let value = object["AccountLimits"] {
            error("Admin.AccountLimits", "\(value.shown) is not an object of limit names and maximums")
        }
        if let value = object["HostNames"], let items = array(value, "Admin.HostNames") {
            for (index, item) in items.enumerated() {
                guard let name = string(item, "Admin.HostNames[\(index)]") else { continue }
                let labels = name.split(separator: ".", omittingEmptySubsequences: false)
                let isName =
                    !name.isEmpty && name.count <= 253 && IPAddress(name) == nil
                    && labels.allSatisfy { label in
                        (1...63).contains(label.count)
                            && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
                    }
                if isName {
                    admin.hostNames.append(name.lowercased())
                } else {
                    error("Admin.HostNames[\(index)]", "\"\(name)\" is not a DNS name such as lb.test")
                }
            }
        }
        if let value = object["PublicMetrics"], let open = boolean(value, "Admin.PublicMetrics") {
            admin.publicMetrics = open
        }
        if !admin.address.ip.isLoopback && admin.token == nil {
            error(
                "Admin.Address",
                "\(admin.address) is not loopback: set Admin.Token too, so only holders of the token can change targets"
            )
        }
        return admin
    }

    static let redactedProblem =
        "is \"\(AdminConfiguration.redacted)\", the placeholder GET /config and ctl export-config write in place "
        + "of a secret: put the real one here"

    /// `Dns`: the responder for the load balancers' DNS names. On by default at 127.0.0.1:8053 (a
    /// default that is taken is only a warning); `Enabled: false` turns it off.
    package mutating func dns(_ value: JSONValue) -> DNSConfiguration? {
        guard let object = readObject(value, "Dns", keys: ["Enabled", "Address"]) else { return nil }
        if let value = object["Enabled"], boolean(value, "Dns.Enabled") == false { return nil }
        var dns = DNSConfiguration()
        if let value = object["Address"], let text = string(value, "Dns.Address") {
            if let endpoint = IPEndpoint(text) {
                dns = DNSConfiguration(address: endpoint, explicit: true)
            } else {
                error("Dns.Address", "\"\(text)\" is not ADDRESS:PORT (IPv6 as [::1]:8053)")
            }
        }
        return dns
    }
}
