/// The names AWS gives a load balancer's resources: ARNs, the DNS name, the hosted zone. Each id is
/// derived from the resource's name, so a resource loaded from the same file has the same ARN on
/// every start.
package struct ResourceNames: Sendable {
    package var region: String
    package var accountID: String
    /// The Application Load Balancers by model name: their ARNs say `app` where a network one's say `net`.
    package var applications: Set<String> = []

    func kind(_ name: String) -> String { applications.contains(name) ? "app" : "net" }

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

    private func prefix(_ region: String) -> String { "arn:aws:elasticloadbalancing:\(region):\(accountID):" }

    // MARK: Regions
    //
    // The model keeps every region's resources; one made in another region than `region` (the home,
    // `Admin.Region`) is named inside the model `name.region` (AWS's names hold no dot, so no name of the
    // home region is ever taken). These functions take that internal name and give AWS's: the name as
    // the user gave it, in its region's ARN and DNS name (docs/api.md §14).

    /// The name as AWS shows it, and the region the resource is in (nil: the home region).
    package static func parts(_ internalName: String) -> (name: String, region: String?) {
        guard let dot = internalName.firstIndex(of: ".") else { return (internalName, nil) }
        return (String(internalName[..<dot]), String(internalName[internalName.index(after: dot)...]))
    }

    /// The name as AWS shows it (`web` for `web.eu-west-1`).
    package static func shown(_ internalName: String) -> String { parts(internalName).name }

    /// The model's name for `name` made in `region` (nil or the home region: `name` itself).
    package func qualified(_ name: String, region: String?) -> String {
        guard let region, region != self.region else { return name }
        return name + "." + region
    }

    /// The region of the resource named `internalName`.
    package func region(of internalName: String) -> String { Self.parts(internalName).region ?? region }

    /// `arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/net/{name}/{16 hex}`
    package func loadBalancer(_ name: String) -> String {
        let (shown, region) = Self.parts(name)
        return prefix(region ?? self.region) + "loadbalancer/\(kind(name))/\(shown)/\(Self.id("lb/" + name))"
    }

    /// `…:targetgroup/{name}/{16 hex}`
    package func targetGroup(_ name: String) -> String {
        let (shown, region) = Self.parts(name)
        return prefix(region ?? self.region) + "targetgroup/\(shown)/\(Self.id("tg/" + name))"
    }

    /// `…:listener/net/{lb}/{lb's 16 hex}/{16 hex}`
    package func listener(loadBalancer name: String, port: UInt16) -> String {
        let (shown, region) = Self.parts(name)
        return prefix(region ?? self.region)
            + "listener/\(kind(name))/\(shown)/\(Self.id("lb/" + name))/\(Self.id("listener/\(name)/\(port)"))"
    }

    /// `…:truststore/{name}/{16 hex}`
    /// `…:listener-rule/app/{lb}/{lb's 16 hex}/{listener's 16 hex}/{rule's 16 hex}`
    package func rule(loadBalancer name: String, port: UInt16, id: String) -> String {
        let (shown, region) = Self.parts(name)
        return prefix(region ?? self.region)
            + "listener-rule/\(kind(name))/\(shown)/\(Self.id("lb/" + name))/\(Self.id("listener/\(name)/\(port)"))/\(id)"
    }

    package func trustStore(_ name: String) -> String {
        let (shown, region) = Self.parts(name)
        return prefix(region ?? self.region) + "truststore/\(shown)/\(Self.id("ts/" + name))"
    }

    /// `{name}-{16 hex}.elb.{region}.amazonaws.com`
    package func dnsName(_ name: String) -> String {
        let (shown, region) = Self.parts(name)
        // An Application Load Balancer's name reads `{name}-{id}.{region}.elb.amazonaws.com`.
        if applications.contains(name) {
            return "\(shown)-\(Self.id("lb/" + name)).\(region ?? self.region).elb.amazonaws.com"
        }
        return "\(shown)-\(Self.id("lb/" + name)).elb.\(region ?? self.region).amazonaws.com"
    }

    /// The Route 53 zone of Network Load Balancers' DNS names in the home region (nil where this table
    /// has none).
    package var canonicalHostedZoneID: String? { Self.canonicalHostedZoneID(region) }

    package static func canonicalHostedZoneID(_ region: String, application: Bool = false) -> String? {
        // Application Load Balancers' names are in other zones than network ones'.
        if application {
            return [
                "us-east-1": "Z35SXDOTRQ7X7K", "us-east-2": "Z3AADJGX6KTTL2", "us-west-1": "Z368ELLRRE2KJ0",
                "us-west-2": "Z1H1FL5HABSF5", "eu-west-1": "Z32O12XQLNTSW2", "eu-central-1": "Z215JYRZR1TBD5",
                "ap-south-1": "Z11127IXD6XFTK", "ap-northeast-1": "Z14GRHDCWA56QT",
                "ap-southeast-1": "Z1LMS91P8CMLE5", "ap-southeast-2": "Z1GM3OXH4ZPM65",
            ][region]
        }
        return [
            "us-east-1": "Z26RNL4JYFTOTI", "us-east-2": "ZLMOA37VPKANP", "us-west-1": "Z24FKFUX50B4VW",
            "us-west-2": "Z18D5FSROUN65G", "ca-central-1": "Z2EPGBW3API2WT", "eu-west-1": "Z2IFOLAFXWLO4F",
            "eu-central-1": "Z3F0SRJ5LGBH90",
        ][region]
    }

    /// The VPC every resource of this emulator is in: `vpc-` and 17 hex digits, stable per account.
    package var vpcID: String {
        "vpc-" + Self.id("vpc/\(accountID)/\(region)") + Self.id("vpc+/\(accountID)/\(region)").prefix(1)
    }

    /// The model's name of the resource in an ARN of `kind` (`targetgroup`, `loadbalancer/net`,
    /// `listener/net`) of this account, in any region; nil when `arn` is not such an ARN.
    package func name(in arn: String, kind: String) -> String? {
        let fields = arn.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        // `…/net` stands for an application load balancer's `…/app` too: the ARN's name decides which.
        let app = kind.hasSuffix("/net") ? kind.dropLast(3) + "app" : kind
        guard fields.count == 6, fields[0] == "arn", fields[2] == "elasticloadbalancing", fields[4] == accountID,
            fields[5].hasPrefix(kind + "/") || fields[5].hasPrefix(app + "/"), Self.isRegion(String(fields[3]))
        else { return nil }
        let name = fields[5].dropFirst(kind.count + 1).split(separator: "/").first.map(String.init)
        return name.map { qualified($0, region: String(fields[3])) }
    }

    /// AWS's shape of a region's name: `us-east-1`, `ap-southeast-2`, `us-gov-west-1`.
    package static func isRegion(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        return parts.count >= 3 && parts.allSatisfy { !$0.isEmpty } && parts.last!.allSatisfy(\.isNumber)
            && text.allSatisfy { ($0.isLetter && $0.isLowercase) || $0.isNumber || $0 == "-" }
    }

    /// The name in a load balancer's ARN of any region and account (`…:loadbalancer/net/{name}/{id}`),
    /// or nil when `arn` is not one.
    package static func loadBalancerName(in arn: String) -> String? {
        guard arn.hasPrefix("arn:"),
            let range = arn.range(of: ":loadbalancer/net/") ?? arn.range(of: ":loadbalancer/app/")
        else { return nil }
        return arn[range.upperBound...].split(separator: "/").first.map(String.init)
    }

    package init(region: String, accountID: String) {
        self.region = region
        self.accountID = accountID
    }
}
