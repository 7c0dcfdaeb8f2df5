import ProxyProtocol

/// The `Admin` section of a configuration.
extension ConfigReader {
    /// `Admin`: the control API. On by default at 127.0.0.1:8404; an address other than loopback
    /// needs a token, since anyone who reaches it can deregister every target.
    mutating func admin(_ value: JSONValue) -> AdminConfiguration? {
        guard
            let object = readObject(
                value, "Admin",
                keys: ["Enabled", "Address", "Token", "Region", "AccountId", "AccessKeyId", "SecretAccessKey"])
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
            if secret.count >= 16 {
                admin.secretAccessKey = secret
            } else {
                error("Admin.SecretAccessKey", "is shorter than 16 characters")
            }
        }
        if (object["AccessKeyId"] == nil) != (object["SecretAccessKey"] == nil) {
            error("Admin", "AccessKeyId and SecretAccessKey go together: give both, or neither")
        }
        if let value = object["Token"], let token = string(value, "Admin.Token") {
            if token.count < 16 {
                error("Admin.Token", "is shorter than 16 characters; use a long random string")
            } else {
                admin.token = token
            }
        }
        if !admin.address.ip.isLoopback && admin.token == nil {
            error(
                "Admin.Address",
                "\(admin.address) is not loopback: set Admin.Token too, so only holders of the token can change targets"
            )
        }
        return admin
    }

    /// `Dns`: the responder for the load balancers' DNS names. On by default at 127.0.0.1:8053 (a
    /// default that is taken is only a warning); `Enabled: false` turns it off.
    mutating func dns(_ value: JSONValue) -> DNSConfiguration? {
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
