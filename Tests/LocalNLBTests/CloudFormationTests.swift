import Foundation
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// CloudFormation templates in JSON as configurations: the ELBv2 resources are read, intrinsics
/// resolved by logical id, the rest skipped with one line, and problems named by resource.
@Suite struct CloudFormationTemplates {
    /// The example in config/, in the shape `cdk synth --json` writes.
    @Test func theCDKShapedExampleLoads() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("config/cdk-nlb-proxy-v2.template.json")
        let loaded = try ConfigLoader.load(path: url.path)
        let c = loaded.configuration
        let lb = try #require(c.loadBalancers.first)
        #expect(c.loadBalancers.count == 1 && lb.name == "web-nlb" && lb.scheme == "internal")
        #expect(lb.nodes.map(\.subnetID) == ["VpcPrivateSubnet1Subnet536B997A"])
        #expect(lb.nodes.first?.ipv4?.description == "127.0.0.1")
        #expect(c.listeners.map(\.port) == [8083] && c.listeners[0].targetGroupName == "web-fargate")
        let group = try #require(c.targetGroups.first)
        #expect(group.name == "web-fargate" && group.port == 9001)  // Fn::Join and the Parameter's Default
        #expect(group.proxyProtocolV2Enabled && group.deregistrationDelaySeconds == 30)
        #expect(group.healthCheck.intervalSeconds == 10 && group.targets.count == 2)
        #expect(group.tags.map(\.value) == ["localnlb-web"])  // Fn::Sub with a pseudo parameter
        #expect(lb.tags.map(\.key) == ["app"])
        #expect(
            loaded.notes == [
                "template: top-level Outputs not read (localnlb reads Resources and Parameters' Defaults)",
                "template: 3 resource(s) of other types skipped: AWS::CDK::Metadata (1), AWS::EC2::SecurityGroup (1), "
                    + "AWS::EC2::VPC (1)",
                "template: the subnets' CidrBlock not used (nodes listen on loopback): a target is in its "
                    + "AvailabilityZone, or in the one zone when there is one",
            ])
    }

    /// Logical ids stand in for names where the template gives none; a Ref to a target group is its ARN,
    /// and the listener finds the group by it.
    @Test func refsAndGetAttResolveByLogicalID() throws {
        let json = """
            { "Parameters": { "Port": { "Type": "Number", "Default": 8080 } },
              "Resources": {
                "Lb": { "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
                        "Properties": { "Subnets": ["subnet-a", "subnet-b"] } },
                "Tg": { "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
                        "Properties": { "Port": 80, "TargetType": "ip",
                                        "Tags": [ { "Key": "lb", "Value": { "Fn::GetAtt": ["Lb", "LoadBalancerName"] } } ] } },
                "L": { "Type": "AWS::ElasticLoadBalancingV2::Listener",
                       "Properties": { "LoadBalancerArn": { "Ref": "Lb" }, "Port": { "Ref": "Port" },
                                       "DefaultActions": [ { "Type": "forward", "TargetGroupArn": { "Ref": "Tg" } } ] } } } }
            """
        let c = try load(json).configuration
        #expect(c.loadBalancers.map(\.name) == ["Lb"] && c.targetGroups.map(\.name) == ["Tg"])
        #expect(c.loadBalancers[0].nodes.compactMap { $0.ipv4?.description } == ["127.0.0.1", "127.0.0.2"])
        #expect(c.listeners.map(\.port) == [8080] && c.listeners[0].targetGroupName == "Tg")
        #expect(c.targetGroups[0].tags.map(\.value) == ["Lb"])
    }

    /// A load balancer's security group, made by the template and so skipped: its `Fn::GetAtt` is a
    /// stable placeholder in AWS's shape, and the load balancer keeps and describes its groups.
    @Test func getAttOfASkippedResourceIsAStablePlaceholder() throws {
        let json = """
            { "Resources": {
                "LbSg": { "Type": "AWS::EC2::SecurityGroup", "Properties": { "GroupDescription": "lb" } },
                "Cert": { "Type": "AWS::CertificateManager::Certificate", "Properties": {} },
                "Lb": { "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
                        "Properties": { "Subnets": ["subnet-a"],
                                        "SecurityGroups": [ { "Fn::GetAtt": ["LbSg", "GroupId"] } ],
                                        "Tags": [ { "Key": "cert", "Value": { "Fn::GetAtt": "Cert.Arn" } },
                                                  { "Key": "vpc", "Value": { "Fn::GetAtt": ["LbSg", "VpcId"] } } ] } } } }
            """
        let first = try load(json).configuration.loadBalancers[0]
        let again = try load(json).configuration.loadBalancers[0]
        let group = try #require(first.securityGroups.first)
        #expect(group.hasPrefix("sg-") && group.count == 20 && again.securityGroups == [group])
        #expect(first.tags.map(\.value)[0] == "arn:aws:acm:us-east-1:000000000000:Cert")
        #expect(first.tags.map(\.value)[1] != group)  // another attribute, another placeholder
        // The model writes them back, and reads them again.
        let written = Configuration(loadBalancers: [first], listeners: [], targetGroups: []).document.rendered
        #expect(try load(written).configuration.loadBalancers[0].securityGroups == [group])
        // An attribute of a resource that is not there at all is still refused, naming it.
        let missing = json.replacingOccurrences(of: #"["LbSg", "GroupId"]"#, with: #"["Nope", "GroupId"]"#)
        #expect(problems(missing).contains { $0.contains("Nope.GroupId: not an attribute localnlb can give") })
    }

    @Test func topLevelKeysItDoesNotReadAreNamed() throws {
        let json = """
            { "AWSTemplateFormatVersion": "2010-09-09", "Description": "d", "Outputs": {}, "Conditions": {},
              "Resources": { "Tg": { "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
                                     "Properties": { "Port": 80, "TargetType": "ip" } } } }
            """
        #expect(
            try load(json).notes.contains(
                "template: top-level Conditions, Outputs not read (localnlb reads Resources and Parameters' Defaults)"))
        let plain = json.replacingOccurrences(of: #""Outputs": {}, "Conditions": {},"#, with: "")
        #expect(try load(plain).notes.isEmpty)
    }

    /// A two-zone stack as the CDK writes it: its `AWS::EC2::Subnet`s (zones by `Fn::Select` of
    /// `Fn::GetAZs`) put the nodes in two zones, and targets with `AvailabilityZone` serve there.
    @Test func subnetsOfTheTemplateGiveNodesTheirZones() throws {
        let json = """
            { "Resources": {
                "Vpc": { "Type": "AWS::EC2::VPC", "Properties": { "CidrBlock": "10.0.0.0/16" } },
                "VpcPrivateSubnet1": { "Type": "AWS::EC2::Subnet", "Properties": { "VpcId": { "Ref": "Vpc" },
                    "CidrBlock": "10.0.128.0/18", "AvailabilityZone": { "Fn::Select": [0, { "Fn::GetAZs": "" }] } } },
                "VpcPrivateSubnet2": { "Type": "AWS::EC2::Subnet", "Properties": { "VpcId": { "Ref": "Vpc" },
                    "CidrBlock": "10.0.192.0/18", "AvailabilityZone": { "Fn::Select": [1, { "Fn::GetAZs": "" }] } } },
                "Lb": { "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": { "Type": "network",
                    "Subnets": [ { "Ref": "VpcPrivateSubnet1" }, { "Ref": "VpcPrivateSubnet2" } ] } },
                "Tg": { "Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": { "Port": 80,
                    "Protocol": "TCP", "TargetType": "ip", "VpcId": { "Ref": "Vpc" },
                    "Targets": [ { "Id": "127.0.0.1", "Port": 9001, "AvailabilityZone": "us-east-1a" },
                                 { "Id": "127.0.0.1", "Port": 9002, "AvailabilityZone": "us-east-1b" } ] } },
                "L": { "Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": { "LoadBalancerArn": { "Ref": "Lb" },
                    "Port": 80, "Protocol": "TCP",
                    "DefaultActions": [ { "Type": "forward", "TargetGroupArn": { "Ref": "Tg" } } ] } } } }
            """
        let loaded = try load(json)
        let c = loaded.configuration
        let lb = try #require(c.loadBalancers.first)
        #expect(lb.nodes.map(c.zone(of:)) == ["us-east-1a", "us-east-1b"])
        #expect(c.targetGroups[0].targets.map { c.zone(of: $0) } == ["us-east-1a", "us-east-1b"])
        #expect(loaded.notes.contains { $0.contains("CidrBlock not used") })
        // Two zones and a target that names neither: AWS's rule, with the zones to choose from.
        let unplaced = json.replacingOccurrences(of: #", "AvailabilityZone": "us-east-1b""#, with: "")
        #expect(
            problems(unplaced) == [
                "Resources.Tg.Properties.Targets[1]: 127.0.0.1 is in none of the Subnets' CIDR blocks: give it "
                    + "AvailabilityZone (one of us-east-1a, us-east-1b), or all as AWS requires for an address "
                    + "outside the VPC"
            ])
        let zoneless = json.replacingOccurrences(
            of: #""AvailabilityZone": { "Fn::Select": [1, { "Fn::GetAZs": "" }] }"#,
            with: #""MapPublicIpOnLaunch": false"#)
        #expect(
            problems(zoneless) == [
                "Resources.VpcPrivateSubnet2.Properties.AvailabilityZone: missing (localnlb places a subnet by its "
                    + "zone's name)"
            ])
        // A subnet the template does not make (Vpc.fromLookup): nodes stay in one zone, and it is said.
        let foreign = json.replacingOccurrences(of: #"{ "Ref": "VpcPrivateSubnet2" }"#, with: #""subnet-0abc""#)
            .replacingOccurrences(of: #""us-east-1b" }"#, with: #""us-east-1a" }"#)
        let outside = try load(foreign)
        #expect(outside.configuration.subnets.isEmpty)
        #expect(outside.notes.contains { $0.contains("subnet-0abc not made by the template") })
    }

    /// A TLS listener as the CDK writes it: a certificate made in the stack (its Ref is an ACM ARN),
    /// `SslPolicy`, `AlpnPolicy` as a list, and a `ListenerCertificate` adding a second for SNI.
    @Test func aTLSListenerOfTheCDKLoads() throws {
        let json = """
            { "Resources": {
                "Cert": { "Type": "AWS::CertificateManager::Certificate", "Properties": { "DomainName": "api.example.com" } },
                "Lb": { "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": { "Type": "network",
                    "Subnets": ["subnet-a"] } },
                "Tg": { "Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": { "Port": 80, "Protocol": "TCP",
                    "TargetType": "ip" } },
                "Tls": { "Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": { "LoadBalancerArn": { "Ref": "Lb" },
                    "Port": 443, "Protocol": "TLS", "Certificates": [ { "CertificateArn": { "Ref": "Cert" } } ],
                    "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06", "AlpnPolicy": [ "HTTP2Preferred" ],
                    "DefaultActions": [ { "Type": "forward", "TargetGroupArn": { "Ref": "Tg" } } ] } },
                "Extra": { "Type": "AWS::ElasticLoadBalancingV2::ListenerCertificate", "Properties": {
                    "ListenerArn": { "Ref": "Tls" },
                    "Certificates": [ { "CertificateArn": "arn:aws:acm:us-east-1:000000000000:certificate/second" } ] } } } }
            """
        let listener = try #require(try load(json).configuration.listeners.first)
        #expect(listener.protocolName == .tls && listener.sslPolicy == "ELBSecurityPolicy-TLS13-1-2-2021-06")
        #expect(listener.alpnPolicy == "HTTP2Preferred" && listener.certificateArns.count == 2)
        #expect(listener.certificateArns[0].hasPrefix("arn:aws:acm:us-east-1:000000000000:certificate/"))
        #expect(listener.certificateArns[1] == "arn:aws:acm:us-east-1:000000000000:certificate/second")
        #expect(try load(json).configuration.listeners[0].certificateArns == listener.certificateArns)  // stable
    }

    /// The CDK's `NetworkListenerAction.weightedForward`: a listener's ForwardConfig over two TCP groups,
    /// each a Ref; weights and the groups read back, and what AWS refuses named by the resource.
    @Test func aWeightedForwardOfTheCDKLoads() throws {
        func template(_ forward: String, second: String = #""Protocol": "TCP""#) -> String {
            """
            { "Resources": {
                "Lb": { "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": { "Type": "network",
                    "Subnets": ["subnet-a"] } },
                "Blue": { "Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": { "Port": 80, "Protocol": "TCP",
                    "TargetType": "ip" } },
                "Green": { "Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": { "Port": 81, \(second),
                    "TargetType": "ip" } },
                "Listener": { "Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": {
                    "LoadBalancerArn": { "Ref": "Lb" }, "Port": 80, "Protocol": "TCP",
                    "DefaultActions": [ { "Type": "forward", "ForwardConfig": \(forward) } ] } } } }
            """
        }
        let groups =
            #"{ "TargetGroups": [ { "TargetGroupArn": { "Ref": "Blue" }, "Weight": 90 }, { "TargetGroupArn": { "Ref": "Green" }, "Weight": 10 } ] }"#
        let listener = try #require(try load(template(groups)).configuration.listeners.first)
        #expect(
            listener.defaultAction
                == .weightedForward([.init(name: "Blue", weight: 90), .init(name: "Green", weight: 10)]))
        #expect(listener.targetGroupName == "Blue")
        #expect(problems(template(groups, second: #""Protocol": "UDP""#)).contains { $0.contains("Green is UDP") })
        let sticky = groups.replacingOccurrences(
            of: "] }", with: #"], "TargetGroupStickinessConfig": { "Enabled": true, "DurationSeconds": 60 } }"#)
        #expect(
            try load(template(sticky)).configuration.listeners[0].defaultAction
                == .weightedForward(
                    [.init(name: "Blue", weight: 90), .init(name: "Green", weight: 10)], stickySeconds: 60))
        let zero = groups.replacingOccurrences(of: "90", with: "0").replacingOccurrences(of: "10 }", with: "0 }")
        #expect(problems(template(zero)).contains { $0.contains("every weight is 0") })
    }

    /// A trust store made in the template, its Ref the ARN a listener's MutualAuthentication names; an S3
    /// key that is no local path is named, with what localnlb reads instead.
    @Test func aTrustStoreOfTheTemplateLoads() throws {
        let json = """
            { "Resources": {
                "Store": { "Type": "AWS::ElasticLoadBalancingV2::TrustStore", "Properties": { "Name": "clients",
                    "CaCertificatesBundleS3Bucket": "my-bucket", "CaCertificatesBundleS3Key": "/etc/ssl/clients.pem" } },
                "Lb": { "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": { "Type": "network",
                    "Subnets": ["subnet-a"] } },
                "Tg": { "Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": { "Port": 80, "TargetType": "ip" } },
                "Tls": { "Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": { "LoadBalancerArn": { "Ref": "Lb" },
                    "Port": 443, "Protocol": "TLS",
                    "Certificates": [ { "CertificateArn": "arn:aws:acm:us-east-1:000000000000:certificate/c" } ],
                    "MutualAuthentication": { "Mode": "verify", "TrustStoreArn": { "Ref": "Store" } },
                    "DefaultActions": [ { "Type": "forward", "TargetGroupArn": { "Ref": "Tg" } } ] } } } }
            """
        let c = try load(json).configuration
        #expect(c.trustStores.map(\.name) == ["clients"] && c.trustStores[0].bucket == "my-bucket")
        #expect(c.listeners[0].mutualAuthentication?.trustStoreName == "clients")
        let s3 = json.replacingOccurrences(of: "/etc/ssl/clients.pem", with: "rootCA.pem")
        #expect(problems(s3).first?.hasPrefix("Resources.Store.Properties.CaCertificatesBundleS3Key:") == true)
    }

    /// A `TrustStoreRevocation` adds its CRLs to the store its `TrustStoreArn` Ref names; one naming no
    /// store of the template is a problem that says so.
    @Test func aTrustStoreRevocationJoinsItsStore() throws {
        let json = """
            { "Resources": {
                "Store": { "Type": "AWS::ElasticLoadBalancingV2::TrustStore", "Properties": { "Name": "clients",
                    "CaCertificatesBundleS3Bucket": "b", "CaCertificatesBundleS3Key": "/etc/ssl/clients.pem" } },
                "Revoked": { "Type": "AWS::ElasticLoadBalancingV2::TrustStoreRevocation", "Properties": {
                    "TrustStoreArn": { "Ref": "Store" },
                    "RevocationContents": [ { "S3Bucket": "b", "S3Key": "/etc/ssl/clients.crl", "RevocationType": "CRL" } ] } } } }
            """
        let c = try load(json).configuration
        #expect(c.trustStores[0].revocations.map(\.key) == ["/etc/ssl/clients.crl"])
        let elsewhere = json.replacingOccurrences(of: #"{ "Ref": "Store" }"#, with: #""arn:aws:x""#)
        #expect(
            problems(elsewhere) == [
                "Resources.Revoked.Properties.TrustStoreArn: a Ref to a TrustStore of this template"
            ])
    }

    /// The load balancer of the CDK's ApplicationLoadBalancedFargateService: `Type: application`, an HTTP
    /// listener and an HTTP group with `stickiness.enabled` false; its tasks register later (no Targets).
    @Test func theCDKsApplicationLoadBalancedServiceLoads() throws {
        let json = """
            { "Resources": {
                "LB": { "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": {
                    "LoadBalancerAttributes": [ { "Key": "deletion_protection.enabled", "Value": "false" } ],
                    "Scheme": "internet-facing", "Subnets": [ "subnet-a" ], "Type": "application" } },
                "Listener": { "Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": {
                    "DefaultActions": [ { "TargetGroupArn": { "Ref": "Group" }, "Type": "forward" } ],
                    "LoadBalancerArn": { "Ref": "LB" }, "Port": 80, "Protocol": "HTTP" } },
                "Group": { "Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": {
                    "Port": 80, "Protocol": "HTTP", "TargetType": "ip",
                    "TargetGroupAttributes": [ { "Key": "stickiness.enabled", "Value": "false" } ] } } } }
            """
        let c = try load(json).configuration
        #expect(c.loadBalancers[0].type == .application && c.listeners[0].protocolName == .http)
        // A ListenerRule of the template joins its listener, its group's Ref resolved.
        let ruled = json.replacingOccurrences(
            of: #""Group": {"#,
            with: #""Rule": { "Type": "AWS::ElasticLoadBalancingV2::ListenerRule", "Properties": {"#
                + #""ListenerArn": { "Ref": "Listener" }, "Priority": 1, "#
                + #""Conditions": [ { "Field": "path-pattern", "PathPatternConfig": { "Values": [ "/api/*" ] } } ], "#
                + #""Actions": [ { "Type": "forward", "TargetGroupArn": { "Ref": "Group" } } ] } }, "Group": {"#)
        let rules = try load(ruled).configuration.listeners[0].rules
        #expect(rules.map(\.priority) == [1] && rules[0].action == .forward(targetGroupName: c.targetGroups[0].name))
        #expect(c.targetGroups[0].protocolName == .http && c.targetGroups[0].healthCheck.matcher == [200...200])
        #expect(c.names.loadBalancer(c.loadBalancers[0].name).contains(":loadbalancer/app/"))
    }

    /// `Fn::Select` of `Fn::Split` and of `Fn::GetAZs`, as `cdk synth` writes them.
    @Test func selectAndSplitResolve() throws {
        let json = """
            { "Resources": {
                "Tg": { "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
                        "Properties": { "Name": { "Fn::Select": [1, { "Fn::Split": ["/", "svc/web-tg/x"] }] },
                                        "Port": 80, "TargetType": "ip",
                                        "Tags": [ { "Key": "az", "Value": { "Fn::Select": ["0", { "Fn::GetAZs": "" }] } } ] } } } }
            """
        let group = try #require(try load(json).configuration.targetGroups.first)
        #expect(group.name == "web-tg" && group.tags.map(\.value) == ["us-east-1a"])
        let outside = json.replacingOccurrences(of: #"[1, { "Fn::Split""#, with: #"[5, { "Fn::Split""#)
        #expect(problems(outside) == ["Resources.Tg.Properties.Name.Fn::Select: index 5 is outside the 3 values"])
    }

    @Test func problemsNameTheResource() {
        let json = """
            { "Resources": {
                "Tg": { "Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": { "Port": 70000, "TargetType": "ip" } },
                "L": { "Type": "AWS::ElasticLoadBalancingV2::Listener",
                       "Properties": { "Port": 80, "DefaultActions": [ { "Type": "forward", "TargetGroupArn": { "Ref": "Tg" } } ] } } } }
            """
        #expect(problems(json) == ["Resources.Tg.Properties.Port: 70000 is not a port (1-65535)"])
        let unresolvable =
            #"{"Resources": {"L": {"Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": {"Port": {"Fn::If": ["Big", 80, 81]}}}}}"#
        #expect(
            problems(unresolvable) == [
                "Resources.L.Properties.Port.Fn::If: Fn::If cannot be resolved here (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, "
                    + "Fn::Select, Fn::Split and Fn::GetAZs can)"
            ])
        #expect(
            problems(
                #"{"Resources": {"L": {"Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": {"Port": {"Ref": "Nope"}}}}}"#
            )
                == [
                    "Resources.L.Properties.Port.Ref: Ref Nope: no parameter, pseudo parameter or resource of that logical id"
                ])
    }

    @Test func yamlIsNamedWithTheWayToJSON() {
        #expect(
            problems("AWSTemplateFormatVersion: \"2010-09-09\"\nResources:\n  Vpc:\n    Type: AWS::EC2::VPC\n") == [
                "configuration: a CloudFormation template in YAML; localnlb reads templates in JSON: convert it "
                    + "(cdk synth --json, or cfn-flip) and pass the .json"
            ])
    }
}
