import LocalNLBDataPlane
import LocalNLBModel
import ProxyProtocol

/// `GET /metrics`: Prometheus text in CloudWatch's AWS/NetworkELB names.
extension ControlPlane {
    /// Prometheus text: CloudWatch's AWS/NetworkELB names in snake case under `localnlb_` (docs/metrics.md §7).
    func prometheusMetrics() -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            out += "# HELP localnlb_\(name) \(help)\n# TYPE localnlb_\(name) \(type)\n"
            for (labels, value) in samples { out += "localnlb_\(name){\(labels)} \(value)\n" }
        }
        func labels(_ group: CountedGroup, _ target: Target? = nil) -> String {
            // The load balancer whose listener (its default action or a rule) forwards to the group.
            let lb = configuration.loadBalancers(forwardingTo: group.configuration.name).first
            var text = "load_balancer=\"\(lb ?? "")\",target_group=\"\(group.configuration.name)\""
            if let target { text += ",target=\"\(target.endpoint)\"" }
            return text
        }
        let counters = metricsOfAllLoops()
        let live = groups.indices.filter { !groups[$0].removed }.map { index in
            CountedGroup(group: groups[index], metrics: index < counters.count ? counters[index] : GroupMetrics())
        }
        family(
            "active_flow_count", "gauge", "Flows connecting or established (ActiveFlowCount).",
            live.map { (labels($0), String($0.targets.reduce(0) { $0 + $1.activeFlows })) })
        // Per target under a name of its own: sum(localnlb_active_flow_count) must not count each flow twice.
        family(
            "target_active_flow_count", "gauge", "Flows connecting or established, per target.",
            live.flatMap { g in
                g.targets.filter { $0.state != .unused }.map { (labels(g, $0), String($0.activeFlows)) }
            })
        // The per-group counters and gauges: name, type, help, value.
        let perGroup: [(String, String, String, (CountedGroup) -> String)] = [
            ("new_flow_count_total", "counter", "Flows accepted (NewFlowCount).", { String($0.metrics.newFlowCount) }),
            (
                "processed_bytes_total", "counter", "Bytes moved either way (ProcessedBytes).",
                { String($0.metrics.processedBytes) }
            ),
            (
                "healthy_host_count", "gauge", "Targets in state healthy (HealthyHostCount).",
                { g in String(g.targets.filter { $0.state == .healthy }.count) }
            ),
            (
                "unhealthy_host_count", "gauge",
                "Targets in state unhealthy or unhealthy.draining (UnHealthyHostCount).",
                { g in String(g.targets.filter { $0.state == .unhealthy || $0.state == .unhealthyDraining }.count) }
            ),
            (
                "tcp_client_reset_count_total", "counter", "RSTs sent by clients (TCP_Client_Reset_Count).",
                { String($0.metrics.tcpClientResetCount) }
            ),
            (
                "tcp_target_reset_count_total", "counter", "RSTs sent by targets (TCP_Target_Reset_Count).",
                { String($0.metrics.tcpTargetResetCount) }
            ),
            (
                "tcp_elb_reset_count_total", "counter", "RSTs sent by the load balancer (TCP_ELB_Reset_Count).",
                { String($0.metrics.tcpELBResetCount) }
            ),
            (
                "unhealthy_routing_flow_count_total", "counter",
                "Flows routed to a target that is not healthy while failing open (UnhealthyRoutingFlowCount).",
                { String($0.metrics.unhealthyRoutingFlowCount) }
            ),
            (
                "client_tls_negotiation_error_count_total", "counter",
                "TLS handshakes of clients that failed or timed out on the TLS listeners forwarding to the group "
                    + "(ClientTLSNegotiationErrorCount).",
                { String($0.metrics.clientTLSNegotiationErrorCount) }
            ),
            (
                "target_tls_negotiation_error_count_total", "counter",
                "TLS handshakes with targets of a TLS target group that failed (TargetTLSNegotiationErrorCount).",
                { String($0.metrics.targetTLSNegotiationErrorCount) }
            ),
            (
                "request_count_total", "counter",
                "Requests an application load balancer's listeners received for the group (RequestCount).",
                { String($0.metrics.requestCount) }
            ),
            (
                "httpcode_target_2xx_count_total", "counter",
                "Responses of the group's targets with a 2XX status (HTTPCode_Target_2XX_Count).",
                { String($0.metrics.httpCodeTarget2XX) }
            ),
            (
                "httpcode_target_3xx_count_total", "counter",
                "Responses of the group's targets with a 3XX status (HTTPCode_Target_3XX_Count).",
                { String($0.metrics.httpCodeTarget3XX) }
            ),
            (
                "httpcode_target_4xx_count_total", "counter",
                "Responses of the group's targets with a 4XX status (HTTPCode_Target_4XX_Count).",
                { String($0.metrics.httpCodeTarget4XX) }
            ),
            (
                "httpcode_target_5xx_count_total", "counter",
                "Responses of the group's targets with a 5XX status (HTTPCode_Target_5XX_Count).",
                { String($0.metrics.httpCodeTarget5XX) }
            ),
            (
                "target_response_time_seconds_sum", "counter",
                "Seconds the group's targets took to a response head, summed (TargetResponseTime's sum).",
                { String(Double($0.metrics.targetResponseNanoseconds) / 1e9) }
            ),
            (
                "target_response_time_seconds_count", "counter",
                "Responses TargetResponseTime's sum is over (divide the two for the average).",
                { String($0.metrics.targetResponses) }
            ),
            (
                "httpcode_elb_3xx_count_total", "counter",
                "Redirects the load balancer's rules answered (HTTPCode_ELB_3XX_Count).",
                { String($0.metrics.httpCodeELB3XX) }
            ),
            (
                "httpcode_elb_4xx_count_total", "counter",
                "4XX answers the load balancer gave itself (400, 463) for the group's listeners (HTTPCode_ELB_4XX_Count).",
                { String($0.metrics.httpCodeELB4XX) }
            ),
            (
                "httpcode_elb_5xx_count_total", "counter",
                "5XX answers the load balancer gave itself (502, 503, 504) for the group's listeners "
                    + "(HTTPCode_ELB_5XX_Count).",
                { String($0.metrics.httpCodeELB5XX) }
            ),
            (
                "port_allocation_error_count_total", "counter",
                "Flows reset because no local port was free towards their target (PortAllocationErrorCount).",
                { String($0.metrics.portAllocationErrorCount) }
            ),
            (
                "health_check_skipped_total", "counter",
                "Health checks not made because localnlb itself had no descriptor, memory or local port for them: "
                    + "retried, never counted against the target (localnlb's own).",
                { [healthChecksSkipped] in String(healthChecksSkipped[$0.configuration.name] ?? 0) }
            ),
        ]
        for (name, type, help, value) in perGroup {
            family(name, type, help, live.map { (labels($0), value($0)) })
        }
        // UDP, as CloudWatch names it: NewFlowCount_UDP, ActiveFlowCount_UDP, ProcessedBytes_UDP, ProcessedPackets.
        let perGroupUDP: [(String, String, String, (CountedGroup) -> String)] = [
            (
                "new_flow_count_udp_total", "counter", "UDP flows started (NewFlowCount_UDP).",
                { String($0.metrics.newFlowCountUDP) }
            ),
            (
                "active_flow_count_udp", "gauge", "UDP flows live (ActiveFlowCount_UDP).",
                { String($0.metrics.activeFlowCountUDP) }
            ),
            (
                "processed_bytes_udp_total", "counter", "UDP payload bytes either way (ProcessedBytes_UDP).",
                { String($0.metrics.processedBytesUDP) }
            ),
            (
                "processed_packets_total", "counter", "Datagrams either way (ProcessedPackets).",
                { String($0.metrics.processedPackets) }
            ),
        ]
        for (name, type, help, value) in perGroupUDP {
            family(name, type, help, live.map { (labels($0), value($0)) })
        }
        // CloudWatch's AvailabilityZone dimension: host counts per group and zone, flows per node.
        var zoneSamples: [(healthy: (String, String), unhealthy: (String, String))] = []
        for group in live {
            let zones = Set(group.targets.filter(\.isRegistered).map(\.zone)).sorted()
            for zone in zones {
                let inZone = group.targets.filter { $0.zone == zone }
                let zoneLabels = labels(group) + ",availability_zone=\"\(zone)\""
                zoneSamples.append(
                    (
                        (zoneLabels, String(inZone.filter { $0.state == .healthy }.count)),
                        (
                            zoneLabels,
                            String(inZone.filter { $0.state == .unhealthy || $0.state == .unhealthyDraining }.count)
                        )
                    ))
            }
        }
        family(
            "zone_healthy_host_count", "gauge",
            "Targets in state healthy, per zone (HealthyHostCount by AvailabilityZone).",
            zoneSamples.map(\.healthy))
        family(
            "zone_unhealthy_host_count", "gauge",
            "Targets unhealthy, per zone (UnHealthyHostCount by AvailabilityZone).",
            zoneSamples.map(\.unhealthy))
        // Every listener socket ever opened counts, closed ones too, summed by their labels: a deleted
        // listener's series keeps its value, and one opened again on the same node goes on from it.
        let flows = newFlowsOfAllLoops()
        var nodeSamples: [(labels: String, value: Int)] = []
        var sampleIndex: [String: Int] = [:]
        for index in listeners.indices {
            let listener = listeners[index]
            let labels =
                "load_balancer=\"\(listener.loadBalancerName)\",availability_zone=\"\(listener.zone)\",node=\"\(listener.endpoint)\""
            let value = index < flows.count ? flows[index] : 0
            if let at = sampleIndex[labels] {
                nodeSamples[at].value += value
            } else {
                sampleIndex[labels] = nodeSamples.count
                nodeSamples.append((labels, value))
            }
        }
        family(
            "node_new_flow_count_total", "counter",
            "Flows accepted, per node address and port (NewFlowCount by AvailabilityZone).",
            nodeSamples.map { ($0.labels, String($0.value)) })
        // An application load balancer's own answers by load balancer, a listener that forwards to no
        // group (a redirect, a fixed response) included: CloudWatch's LoadBalancer dimension.
        let answers = elbAnswersOfAllLoops()
        var byBalancer: [(name: String, answers: ELBAnswers)] = []
        for balancer in configuration.loadBalancers where balancer.type == .application {
            var sum = ELBAnswers()
            for index in listeners.indices
            where index < answers.count && listeners[index].loadBalancerName == balancer.name {
                sum.add(answers[index])
            }
            byBalancer.append((balancer.name, sum))
        }
        let perBalancer: [(String, String, KeyPath<ELBAnswers, Int>)] = [
            ("3xx", "Redirects the load balancer answered (HTTPCode_ELB_3XX_Count).", \.count3XX),
            ("4xx", "4XX answers the load balancer gave itself, 460 included (HTTPCode_ELB_4XX_Count).", \.count4XX),
            ("5xx", "5XX answers the load balancer gave itself (HTTPCode_ELB_5XX_Count).", \.count5XX),
            ("500", "500 answers of the load balancer's own (HTTPCode_ELB_500_Count).", \.count500),
            ("502", "502 answers: a target refused, reset or answered garbage (HTTPCode_ELB_502_Count).", \.count502),
            ("503", "503 answers: no target to send to (HTTPCode_ELB_503_Count).", \.count503),
            ("504", "504 answers: no answer within the idle timeout (HTTPCode_ELB_504_Count).", \.count504),
        ]
        for (code, help, field) in perBalancer {
            family(
                "load_balancer_httpcode_elb_\(code)_count_total", "counter", help + " By load balancer.",
                byBalancer.map { ("load_balancer=\"\($0.name)\"", String($0.answers[keyPath: field])) })
        }
        return out
    }
}

/// A target group with its counters summed over the loops, as `/metrics` writes it.
private struct CountedGroup {
    package let group: TargetGroup
    package let metrics: GroupMetrics
    package var targets: [Target] { group.targets }
    package var configuration: TargetGroupConfiguration { group.configuration }
}
