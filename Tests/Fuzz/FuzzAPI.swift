// libFuzzer entry point for the control address's front ends end to end: the JSON API, the ELBv2
// Query API, ARC's zonal shift API. scripts/fuzz.sh compiles it into the LocalNLBControl module itself
// (`swiftc -sanitize=fuzzer,address -module-name LocalNLBControl` with every source of the module), and
// runs it in a network namespace of its own: a CreateListener in an input opens a real socket.
//
// An input is one or more HTTP requests back to back, as a client would send them on one address.
// Each goes through parsing, the access rule, decoding, the command on a fresh model (a control plane
// made for the input: nothing carries over between inputs) and the encoding of its answer. The
// properties checked:
// - nothing traps: not an overflow, an index, a force-unwrap, whatever the bytes;
// - every answer is a whole HTTP response whose Content-Length is its body's length.

import Foundation
import Glibc
import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzControlAPI(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    var input = count == 0 ? [] : Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let plane = FuzzedControlPlane.make() else { return 0 }
    for _ in 0..<8 {
        let response: AdminResponse
        switch AdminRequest.parse(input) {
        case .incomplete:
            return 0
        case .invalid(let status, let message):
            response = plane.httpError(status, message, input: input)
            input = []
        case .request(let request):
            response = plane.handle(request)
            input.removeFirst(min(request.wireLength, input.count))
        }
        let bytes = response.bytes
        let head = bytes.split(separator: 13, maxSplits: 1).first ?? []
        precondition(head.starts(with: Array("HTTP/1.1 \(response.status) ".utf8)), "a status line is malformed")
        precondition(
            String(decoding: bytes, as: UTF8.self).contains("Content-Length: \(Array(response.body.utf8).count)\r\n"),
            "Content-Length does not match the body")
        if input.isEmpty { break }
    }
    return 0
}

enum FuzzedControlPlane {
    /// A control plane with one load balancer, one target group with a target, no listener and no
    /// loop running (a loop's part of an answer, such as /flows, comes back empty).
    static func make() -> ControlPlane? {
        var group = TargetGroupConfiguration(
            name: "tg", port: 80, targetType: .ip,
            targets: [TargetConfiguration(id: "127.0.0.1", address: .v4(IPv4Address(127, 0, 0, 1)), port: 9001)])
        group.healthCheck.enabled = true
        var configuration = Configuration(
            loadBalancerName: "fuzz",
            nodes: [LoadBalancerNode(subnetID: "subnet-a", ipv4: .v4(IPv4Address(127, 0, 0, 1)))], listeners: [],
            targetGroups: [group])
        configuration.dns = nil
        var options = LoadBalancerOptions()
        options.log = { _ in }
        options.flowLog = .disabled
        // RequestCertificate makes a certificate authority: in a folder of the run's own, never in ~.
        options.certificateDirectory =
            ProcessInfo.processInfo.environment["LOCALNLB_CA_DIR"] ?? "/tmp/localnlb-fuzz-ca-\(getpid())"
        guard let plane = try? ControlPlane(configuration: configuration, options: options, bell: ControlBell())
        else { return nil }
        // No loop thread runs: a job for one must come back at once, not wait forever.
        for loop in plane.loops { _ = loop.end() }
        return plane
    }
}
