/// The names AWS gives a load balancer's resources: ARNs, the DNS name, the hosted zone. Each id is
/// derived from the resource's name, so a resource loaded from the same file has the same ARN on
/// every start.
package struct ResourceNames: Sendable {
    package var region: String
    package var accountID: String

    /// 16 hex digits from `text` (FNV-1a): what AWS puts after a resource's name in its ARN.
    package static func id(_ text: String) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    private var prefix: String { "arn:aws:elasticloadbalancing:\(region):\(accountID):" }

    /// `arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/net/{name}/{16 hex}`
    package func loadBalancer(_ name: String) -> String { prefix + "loadbalancer/net/\(name)/\(Self.id("lb/" + name))" }

    /// `…:targetgroup/{name}/{16 hex}`
    package func targetGroup(_ name: String) -> String { prefix + "targetgroup/\(name)/\(Self.id("tg/" + name))" }

    /// `…:listener/net/{lb}/{lb's 16 hex}/{16 hex}`
    package func listener(loadBalancer name: String, port: UInt16) -> String {
        prefix + "listener/net/\(name)/\(Self.id("lb/" + name))/\(Self.id("listener/\(name)/\(port)"))"
    }

    /// `{name}-{16 hex}.elb.{region}.amazonaws.com`
    package func dnsName(_ name: String) -> String { "\(name)-\(Self.id("lb/" + name)).elb.\(region).amazonaws.com" }

    /// The Route 53 zone of Network Load Balancers' DNS names in this region (nil where this table has
    /// none).
    package var canonicalHostedZoneID: String? {
        [
            "us-east-1": "Z26RNL4JYFTOTI", "us-east-2": "ZLMOA37VPKANP", "us-west-1": "Z24FKFUX50B4VW",
            "us-west-2": "Z18D5FSROUN65G", "ca-central-1": "Z2EPGBW3API2WT", "eu-west-1": "Z2IFOLAFXWLO4F",
            "eu-central-1": "Z3F0SRJ5LGBH90",
        ][region]
    }

    /// The VPC every resource of this emulator is in: `vpc-` and 17 hex digits, stable per account.
    package var vpcID: String {
        "vpc-" + Self.id("vpc/\(accountID)/\(region)") + Self.id("vpc+/\(accountID)/\(region)").prefix(1)
    }

    /// The name in an ARN of `kind` (`targetgroup`, `loadbalancer/net`, `listener/net`), or nil when
    /// `arn` is not such an ARN of this region and account.
    package func name(in arn: String, kind: String) -> String? {
        guard arn.hasPrefix(prefix + kind + "/") else { return nil }
        let parts = arn.dropFirst(prefix.count + kind.count + 1).split(separator: "/")
        return parts.first.map(String.init)
    }

    /// The name in a load balancer's ARN of any region and account (`…:loadbalancer/net/{name}/{id}`),
    /// or nil when `arn` is not one.
    package static func loadBalancerName(in arn: String) -> String? {
        guard arn.hasPrefix("arn:"), let range = arn.range(of: ":loadbalancer/net/") else { return nil }
        return arn[range.upperBound...].split(separator: "/").first.map(String.init)
    }

    package init(region: String, accountID: String) {
        self.region = region
        self.accountID = accountID
    }
}
