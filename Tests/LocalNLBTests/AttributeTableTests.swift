import Foundation
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// The attribute tables drive decoding, validation and describe: a row added there is read from the
/// file, checked and listed, with nothing else to change.
@Suite struct AttributeTables {
    /// Every target-group row: its AWS default, given in the file, loads and is described back as given.
    @Test func everyTargetGroupRowDecodesAndDescribes() throws {
        for type in [TargetType.ip, .instance] {
            let fresh = TargetGroupConfiguration(name: "web", port: 80, targetType: type, targets: [])
            for row in targetGroupAttributes {
                guard let value = row.defaultValue(type) else { continue }
                let json = document(attributes: #"{ "Key": "\#(row.key)", "Value": "\#(value)" }"#)
                    .replacingOccurrences(of: #""TargetType": "ip""#, with: #""TargetType": "\#(type.rawValue)""#)
                let group = try load(json).configuration.targetGroups[0]
                let described = Dictionary(uniqueKeysWithValues: group.effectiveAttributes.map { ($0.key, $0.value) })
                #expect(described[row.key] == row.get(fresh), "\(row.key) on \(type)")
            }
        }
    }

    /// A value outside its row's range is an error naming the key, from the same row.
    @Test func rowsCheckTheirValues() {
        #expect(
            problems(document(attributes: #"{ "Key": "deregistration_delay.timeout_seconds", "Value": "-1" }"#)) == [
                #"TargetGroups[0].TargetGroupAttributes["deregistration_delay.timeout_seconds"]: "-1" is out of range (0-86400)"#
            ])
        #expect(
            problems(
                document(
                    attributes:
                        #"{ "Key": "target_group_health.dns_failover.minimum_healthy_targets.percentage", "Value": "101" }"#
                )) == [
                    #"TargetGroups[0].TargetGroupAttributes["target_group_health.dns_failover.minimum_healthy_targets.percentage"]: "101" is out of range (1-100)"#
                ])
    }

    @Test func loadBalancerAttributesAreKept() throws {
        let json = document().replacingOccurrences(
            of: #""Name": "demo-nlb","#,
            with:
                #""Name": "demo-nlb", "LoadBalancerAttributes": [ { "Key": "load_balancing.cross_zone.enabled", "Value": "true" } ],"#
        )
        #expect(try load(json).configuration.loadBalancers[0].attributes.crossZone == true)
        #expect(try load(document()).configuration.loadBalancers[0].attributes.crossZone == false)
    }

    /// The keys named by rules between attributes come from the table.
    @Test func keysAreLookedUpByField() {
        let index = TargetGroupConfiguration.attributeIndex
        #expect(index.key(of: \TargetGroupConfiguration.proxyProtocolV2Enabled) == "proxy_protocol_v2.enabled")
        #expect(index.key(of: \TargetGroupConfiguration.vpcEndpointID) == "localnlb.proxy_protocol_v2.vpc_endpoint_id")
    }
}
