import LocalNLBModel

/// CloudWatch's AWS/NetworkELB counters for one target group (docs/metrics.md §7).
package struct GroupMetrics: Sendable {
    package var newFlowCount = 0
    package var processedBytes: UInt64 = 0
    package var tcpClientResetCount = 0
    package var tcpTargetResetCount = 0
    package var tcpELBResetCount = 0
    package var unhealthyRoutingFlowCount = 0
    package var portAllocationErrorCount = 0
    /// TLS handshakes with clients that failed or timed out, on a TLS listener forwarding to the group.
    package var clientTLSNegotiationErrorCount = 0
    /// TLS handshakes with targets of a `TLS` group that failed.
    package var targetTLSNegotiationErrorCount = 0
    // UDP: NewFlowCount_UDP, ActiveFlowCount_UDP, ProcessedBytes_UDP, ProcessedPackets.
    package var newFlowCountUDP = 0
    package var activeFlowCountUDP = 0
    package var processedBytesUDP: UInt64 = 0
    package var processedPackets: UInt64 = 0
    // Application Load Balancers (AWS/ApplicationELB): RequestCount, HTTPCode_Target_nXX_Count,
    // HTTPCode_ELB_4XX_Count and HTTPCode_ELB_5XX_Count.
    package var requestCount = 0
    package var httpCodeTarget2XX = 0
    package var httpCodeTarget3XX = 0
    package var httpCodeTarget4XX = 0
    package var httpCodeTarget5XX = 0
    package var httpCodeELB3XX = 0
    /// TargetResponseTime: the sum and count of the targets' times to a response head.
    package var targetResponseNanoseconds: UInt64 = 0
    package var targetResponses = 0
    package var httpCodeELB4XX = 0
    package var httpCodeELB5XX = 0

    package init(
        newFlowCount: Int = 0, processedBytes: UInt64 = 0, tcpClientResetCount: Int = 0, tcpTargetResetCount: Int = 0,
        tcpELBResetCount: Int = 0, unhealthyRoutingFlowCount: Int = 0, portAllocationErrorCount: Int = 0,
        newFlowCountUDP: Int = 0, activeFlowCountUDP: Int = 0, processedBytesUDP: UInt64 = 0,
        processedPackets: UInt64 = 0
    ) {
        self.newFlowCount = newFlowCount
        self.processedBytes = processedBytes
        self.tcpClientResetCount = tcpClientResetCount
        self.tcpTargetResetCount = tcpTargetResetCount
        self.tcpELBResetCount = tcpELBResetCount
        self.unhealthyRoutingFlowCount = unhealthyRoutingFlowCount
        self.portAllocationErrorCount = portAllocationErrorCount
        self.newFlowCountUDP = newFlowCountUDP
        self.activeFlowCountUDP = activeFlowCountUDP
        self.processedBytesUDP = processedBytesUDP
        self.processedPackets = processedPackets
    }
}

extension GroupMetrics {
    package mutating func add(_ other: GroupMetrics) {
        newFlowCount += other.newFlowCount
        processedBytes &+= other.processedBytes
        tcpClientResetCount += other.tcpClientResetCount
        tcpTargetResetCount += other.tcpTargetResetCount
        tcpELBResetCount += other.tcpELBResetCount
        unhealthyRoutingFlowCount += other.unhealthyRoutingFlowCount
        portAllocationErrorCount += other.portAllocationErrorCount
        clientTLSNegotiationErrorCount += other.clientTLSNegotiationErrorCount
        targetTLSNegotiationErrorCount += other.targetTLSNegotiationErrorCount
        newFlowCountUDP += other.newFlowCountUDP
        activeFlowCountUDP += other.activeFlowCountUDP
        processedBytesUDP &+= other.processedBytesUDP
        processedPackets &+= other.processedPackets
        requestCount += other.requestCount
        httpCodeTarget2XX += other.httpCodeTarget2XX
        httpCodeTarget3XX += other.httpCodeTarget3XX
        httpCodeTarget4XX += other.httpCodeTarget4XX
        httpCodeTarget5XX += other.httpCodeTarget5XX
        httpCodeELB3XX += other.httpCodeELB3XX
        targetResponseNanoseconds &+= other.targetResponseNanoseconds
        targetResponses += other.targetResponses
        httpCodeELB4XX += other.httpCodeELB4XX
        httpCodeELB5XX += other.httpCodeELB5XX
    }
}

/// The answers an application load balancer gives itself on a listener, as CloudWatch counts them by
/// load balancer: HTTPCode_ELB_3XX/4XX/5XX_Count and HTTPCode_ELB_500/502/503/504_Count.
package struct ELBAnswers: Sendable {
    package var count3XX = 0
    package var count4XX = 0
    package var count5XX = 0
    package var count500 = 0
    package var count502 = 0
    package var count503 = 0
    package var count504 = 0

    package init() {}

    package mutating func record(_ status: Int) {
        switch status {
        case 300..<400: count3XX += 1
        case 400..<500: count4XX += 1
        case 500..<600:
            count5XX += 1
            switch status {
            case 500: count500 += 1
            case 502: count502 += 1
            case 503: count503 += 1
            case 504: count504 += 1
            default: break
            }
        default: break
        }
    }

    package mutating func add(_ other: ELBAnswers) {
        count3XX += other.count3XX
        count4XX += other.count4XX
        count5XX += other.count5XX
        count500 += other.count500
        count502 += other.count502
        count503 += other.count503
        count504 += other.count504
    }
}
