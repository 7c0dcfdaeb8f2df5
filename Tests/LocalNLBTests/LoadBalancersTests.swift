import Foundation
import ProxyProtocol
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// Several load balancers in one file (`LoadBalancers`), each with its nodes and listeners.
@Suite struct SeveralLoadBalancers {
    static let two = """
        { "LoadBalancers": [
            { "Name": "front", "SubnetMappings": [ { "SubnetId": "subnet-a", "PrivateIPv4Address": "127.0.0.1" } ] },
            { "Name": "back", "SubnetMappings": [ { "SubnetId": "subnet-a", "PrivateIPv4Address": "127.0.0.2" } ] } ],
          "Listeners": [
            { "LoadBalancerArn": "front", "Port": 8080,
              "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] },
            { "LoadBalancerArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/back/0123456789abcdef",
              "Port": 8080, "DefaultActions": [ { "Type": "forward", "TargetGroupName": "api" } ] } ],
          "TargetGroups": [
            { "Name": "web", "Port": 80, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1", "Port": 9001 } ] },
            { "Name": "api", "Port": 80, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1", "Port": 9002 } ] } ] }
        """

    /// The same port on two load balancers is two listeners: each on its own nodes' addresses.
    @Test func eachListenerIsOnItsLoadBalancersNodes() throws {
        let c = try load(Self.two).configuration
        #expect(c.loadBalancers.map(\.name) == ["front", "back"])
        #expect(c.listeners.map(\.loadBalancerName) == ["front", "back"])
        #expect(c.listenerEndpoints.map(\.endpoint.description) == ["127.0.0.1:8080", "127.0.0.2:8080"])
    }

    @Test func problemsAreNamed() {
        let sameAddress = Self.two.replacingOccurrences(of: "127.0.0.2", with: "127.0.0.1")
        #expect(
            problems(sameAddress) == [
                "Listeners[1].Port: 127.0.0.1:8080 is also where front's listener listens; give the load "
                    + "balancers different node addresses (SubnetMappings) or another port"
            ])
        let unnamed = Self.two.replacingOccurrences(of: #""LoadBalancerArn": "front", "#, with: "")
        #expect(
            problems(unnamed) == ["Listeners[0].LoadBalancerArn: missing: which of front, back this listener is on"])
        let sharedGroup = Self.two.replacingOccurrences(
            of: #""TargetGroupName": "api""#, with: #""TargetGroupName": "web""#)
        #expect(
            problems(sharedGroup).first
                == "Listeners[1].DefaultActions[0]: target group \"web\" is already front's; a Network Load "
                + "Balancer's target group serves one load balancer")
        let twice = Self.two.replacingOccurrences(of: #""Name": "back""#, with: #""Name": "front""#)
        #expect(problems(twice).first == "LoadBalancers[1].Name: \"front\" is used by another load balancer")
        let both = Self.two.replacingOccurrences(
            of: #"{ "LoadBalancers": ["#, with: #"{ "LoadBalancer": { "Name": "x" }, "LoadBalancers": ["#)
        #expect(
            problems(both).contains(
                "LoadBalancer: given beside LoadBalancers: put every load balancer in LoadBalancers"))
        let badName = Self.two.replacingOccurrences(of: #""Name": "back""#, with: #""Name": "-back""#)
        #expect(problems(badName).first?.hasPrefix("LoadBalancers[1].Name: \"-back\": a load balancer's name") == true)
    }

    /// `export-config` writes every load balancer; the file it writes loads to the same model.
    @Test func theWrittenFileLoadsBack() throws {
        let c = try load(Self.two).configuration
        let text = JSONText.pretty(c.document.rendered)
        let again = try load(text).configuration
        #expect(again.loadBalancers.map(\.name) == ["front", "back"])
        #expect(again.listenerEndpoints.map(\.endpoint) == c.listenerEndpoints.map(\.endpoint))
        #expect(again.listeners.map(\.targetGroupName) == ["web", "api"])
    }
}
